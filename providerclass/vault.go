package providerclass

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// TypeVault is Object.Type for every object of the Vault dialect.
const TypeVault = "vault"

// Vault defaults, as the Vault CSI provider has them.
const (
	DefaultVaultAuthMountPath = "kubernetes"
	DefaultVaultAudience      = "vault"
)

// vault plans the Vault CSI provider's dialect.
func (b *builder) vault() error {
	params := b.plan.Parameters
	v := &VaultParameters{
		RoleName:          params["roleName"],
		Address:           params["vaultAddress"],
		Namespace:         params["vaultNamespace"],
		Audience:          params["audience"],
		CACertPath:        params["vaultCACertPath"],
		CADirectory:       params["vaultCADirectory"],
		TLSServerName:     params["vaultTLSServerName"],
		TLSClientCertPath: params["vaultTLSClientCertPath"],
		TLSClientKeyPath:  params["vaultTLSClientKeyPath"],
	}
	if v.RoleName == "" {
		return errorf("parameters.roleName", "is required")
	}
	if v.Address != "" {
		u, err := url.Parse(v.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix") || (u.Scheme != "unix" && u.Host == "") {
			return errorf("parameters.vaultAddress", "must be an http://, https:// or unix:// URL")
		}
	}
	// vaultKubernetesMountPath is the older name of vaultAuthMountPath.
	auth, legacy := params["vaultAuthMountPath"], params["vaultKubernetesMountPath"]
	switch {
	case auth != "" && legacy != "" && auth != legacy:
		return errorf("parameters.vaultAuthMountPath", "differs from vaultKubernetesMountPath; set only one")
	case auth == "":
		auth = legacy
	}
	if auth == "" {
		auth = DefaultVaultAuthMountPath
	}
	v.AuthMountPath = auth
	if v.Audience == "" {
		v.Audience = DefaultVaultAudience
	}
	if s := params["vaultSkipTLSVerify"]; s != "" {
		skip, err := strconv.ParseBool(s)
		if err != nil {
			return errorf("parameters.vaultSkipTLSVerify", "must be \"true\" or \"false\"")
		}
		v.SkipTLSVerify = skip
	}
	if (v.TLSClientCertPath == "") != (v.TLSClientKeyPath == "") {
		if v.TLSClientCertPath == "" {
			return errorf("parameters.vaultTLSClientCertPath", "is required with vaultTLSClientKeyPath")
		}
		return errorf("parameters.vaultTLSClientKeyPath", "is required with vaultTLSClientCertPath")
	}
	b.plan.Vault = v

	return b.objects(b.vaultObject)
}

func (b *builder) vaultObject(field string, n *yaml.Node) (Object, error) {
	m, err := asMapping(field, n)
	if err != nil {
		return Object{}, err
	}
	obj := Object{Field: field, Type: TypeVault}
	var perm string
	if err := m.strs(
		strField{"objectName", &obj.Name}, strField{"secretPath", &obj.SecretPath},
		strField{"secretKey", &obj.SecretKey}, strField{"method", &obj.Method},
		strField{"encoding", &obj.Encoding}, strField{"filePermission", &perm},
	); err != nil {
		return Object{}, err
	}
	if obj.Name == "" {
		return Object{}, errorf(field+".objectName", "is required")
	}
	if err := vaultSecretPath(field+".secretPath", obj.SecretPath); err != nil {
		return Object{}, err
	}
	switch obj.Method = strings.ToUpper(obj.Method); obj.Method {
	case "":
		obj.Method = "GET"
	case "GET", "POST", "PUT":
	default:
		return Object{}, errorf(field+".method", "unknown method %q: must be GET, POST or PUT", obj.Method)
	}
	switch obj.Encoding = strings.ToLower(obj.Encoding); obj.Encoding {
	case "":
		obj.Encoding = "utf-8"
	case "utf-8", "utf8":
		obj.Encoding = "utf-8"
	case "base64", "hex":
	default:
		return Object{}, errorf(field+".encoding", "unknown encoding %q: must be utf-8, base64 or hex", obj.Encoding)
	}
	if obj.SecretArgs, err = vaultSecretArgs(field+".secretArgs", m); err != nil {
		return Object{}, err
	}
	if obj.SecretArgs != nil && obj.Method == "GET" {
		// A GET has no body: the arguments would be silently dropped.
		return Object{}, errorf(field+".secretArgs", "needs method POST or PUT")
	}
	// The Vault provider writes objectName as the file's path, sub-folders allowed.
	obj.File = obj.Name
	if err := b.claim(field+".objectName", obj.File, true); err != nil {
		return Object{}, err
	}
	if obj.Mode, err = fileMode(field+".filePermission", perm, b.mode); err != nil {
		return Object{}, err
	}
	jp, err := m.list("jmesPath")
	if err != nil {
		return Object{}, err
	}
	same := func(s string) string { return s }
	if obj.Extractions, err = b.extractions(field, jp, obj.Mode, same, true); err != nil {
		return Object{}, err
	}
	return obj, nil
}

// vaultSecretPath checks a secretPath: a Vault API path, optionally followed by a
// query of which only version=N is understood.
func vaultSecretPath(field, p string) error {
	if p == "" {
		return errorf(field, "is required")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return errorf(field, "must not contain a NUL byte")
	}
	path, query, hasQuery := strings.Cut(p, "?")
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errorf(field, "must be a path without empty, '.' or '..' segments")
		}
	}
	if !hasQuery {
		return nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return errorf(field, "has a malformed query")
	}
	for k, vals := range q {
		if k != "version" {
			return errorf(field, "has unknown query parameter %q (only version is understood)", k)
		}
		if len(vals) != 1 {
			return errorf(field, "sets version more than once")
		}
		if n, err := strconv.ParseUint(vals[0], 10, 63); err != nil || n > 1<<40 {
			return errorf(field, "version must be a non-negative integer")
		}
	}
	return nil
}

// vaultSecretArgs reads secretArgs, the JSON body of a POST or PUT: a mapping whose
// values must survive JSON encoding.
func vaultSecretArgs(field string, m *mapping) (map[string]any, error) {
	n, ok := m.node("secretArgs")
	if !ok {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errorf(field, "must be a mapping, found %s", kindName(n))
	}
	var args map[string]any
	if err := n.Decode(&args); err != nil {
		return nil, errorf(field, "must be a mapping with string keys")
	}
	if _, err := json.Marshal(args); err != nil {
		return nil, errorf(field, "cannot be sent as a JSON body (nested keys must be strings, numbers must be finite)")
	}
	return args, nil
}
