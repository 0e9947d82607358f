package providerclass

import (
	"os"

	"github.com/jmespath/go-jmespath"

	"k8s.io/apimachinery/pkg/types"
)

// Dialect is the parameter schema a SecretProviderClass is written in.
type Dialect string

const (
	// DialectAWS is the schema of the AWS provider for the Secrets Store CSI Driver.
	DialectAWS Dialect = "aws"
	// DialectVault is the schema of the Vault CSI provider.
	DialectVault Dialect = "vault"
	// DialectExternal is any other provider: parameters are passed through untouched
	// to an external provider plugin, which owns their validation.
	DialectExternal Dialect = "external"
)

// DefaultFileMode is the mode of a mounted file when neither the SecretProviderClass nor
// the mount asks for another, as with the upstream driver.
const DefaultFileMode os.FileMode = 0o644

// Mount is what the caller knows about the mount a plan is made for.
type Mount struct {
	// Namespace, PodName, PodUID and ServiceAccount come from the CSI volume context
	// (or, for sync without a pod, from the SecretSync).
	Namespace      string
	PodName        string
	PodUID         string
	ServiceAccount string
	// DefaultMode is the mode for files that do not set one; zero means DefaultFileMode.
	DefaultMode os.FileMode
}

// Plan is a validated SecretProviderClass for one mount.
type Plan struct {
	// Class names the SecretProviderClass the plan was made from.
	Class types.NamespacedName
	// Provider is spec.provider, the registry key of the backend.
	Provider string
	Dialect  Dialect
	// Parameters are spec.parameters as written; external providers receive them verbatim.
	Parameters map[string]string

	AWS   *AWSParameters   // set for DialectAWS
	Vault *VaultParameters // set for DialectVault

	// Objects are the things to fetch, in the order of the objects parameter.
	Objects []Object
	// SecretObjects are spec.secretObjects, checked against the planned file names.
	SecretObjects []SecretObject
}

// AWSParameters are the mount-wide parameters of the AWS dialect.
type AWSParameters struct {
	Region               string
	FailoverRegion       string
	PathTranslation      string // "" keeps "/"; otherwise the single character that replaces it
	UsePodIdentity       bool
	PreferredAddressType string // "ipv4", "ipv6" or "auto"
}

// VaultParameters are the mount-wide parameters of the Vault dialect.
type VaultParameters struct {
	RoleName          string
	Address           string // "" means the driver's default
	Namespace         string
	AuthMountPath     string // default "kubernetes"
	Audience          string // default "vault"
	CACertPath        string
	CADirectory       string
	TLSServerName     string
	SkipTLSVerify     bool
	TLSClientCertPath string
	TLSClientKeyPath  string
}

// Object is one thing to fetch from a backend, and the files made from it.
type Object struct {
	// Field is the object's field path for error messages, e.g. "objects[1]".
	Field string
	// Name is objectName as written.
	Name string
	// Type is "secretsmanager" or "ssmparameter" for AWS (inferred from an ARN when
	// not written), "vault" for Vault.
	Type string

	// AWS
	Version      string          // objectVersion
	VersionLabel string          // objectVersionLabel
	Failover     *FailoverObject // failoverObject

	// Vault
	SecretPath string         // secretPath, possibly with "?version=N"
	SecretKey  string         // secretKey: a top-level key of the secret's data; "" = all data as JSON
	Method     string         // GET (default), POST or PUT
	SecretArgs map[string]any // secretArgs, the request body for POST/PUT
	Encoding   string         // "utf-8" (default), "base64" or "hex"

	// File is the relative path the object itself is written to ("" when only
	// extractions are written), with its mode.
	File string
	Mode os.FileMode
	// Extractions are the jmesPath entries: each writes one more file.
	Extractions []Extraction
}

// FailoverObject is the object to read in the failover region.
type FailoverObject struct {
	Name         string
	Version      string
	VersionLabel string
}

// Extraction is one jmesPath entry: a field of the object's JSON document written to a file.
type Extraction struct {
	Field string // e.g. "objects[0].jmesPath[1]"
	Path  string // the JMESPath expression
	File  string // objectAlias
	Mode  os.FileMode

	// compiled is Path parsed at plan time; nil for a hand-made Extraction, which
	// Render then compiles itself.
	compiled *jmespath.JMESPath
}

// SecretObject is one spec.secretObjects entry.
type SecretObject struct {
	Field       string // e.g. "secretObjects[0]"
	SecretName  string
	Type        string // defaults to Opaque
	Labels      map[string]string
	Annotations map[string]string
	Data        []SecretObjectData
}

// SecretObjectData maps one planned file (by its file name) to a key of the Secret.
type SecretObjectData struct {
	ObjectName string // a planned file name (File of an Object or of an Extraction)
	Key        string
}

// ObjectContent is what a backend fetched for one Object.
type ObjectContent struct {
	// Bytes are written, byte for byte, to the Object's File.
	Bytes []byte
	// Document is the JSON the Object's Extractions are evaluated against; nil means Bytes.
	Document []byte
	// Version identifies the content; it changes when the content changes and is stable
	// across restarts. It never reveals the content.
	Version string
}

// File is one file to write into the mount.
type File struct {
	Path  string // relative, validated: no "..", not absolute, no NUL
	Mode  os.FileMode
	Bytes []byte
}
