package vault

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// session is one Fetch: one plan, one identity, one Vault client.
type session struct {
	b        *Backend
	plan     *providerclass.Plan
	id       provider.Identity
	params   providerclass.VaultParameters
	client   *vaultapi.Client
	tokenKey tokenKey
}

func (b *Backend) newSession(plan *providerclass.Plan, id provider.Identity) (*session, error) {
	if plan == nil || plan.Vault == nil {
		return nil, fmt.Errorf("vault: plan has no Vault parameters: %w", provider.ErrInvalid)
	}
	p := *plan.Vault
	if p.Address == "" {
		p.Address = b.opts.DefaultAddress
	}
	if p.Address == "" {
		return nil, fmt.Errorf("vault: SecretProviderClass %s: vaultAddress is not set and there is no default address: %w", plan.Class, provider.ErrInvalid)
	}
	if p.RoleName == "" && b.opts.CallerToken == "" {
		return nil, fmt.Errorf("vault: SecretProviderClass %s: roleName is not set: %w", plan.Class, provider.ErrInvalid)
	}
	if p.AuthMountPath == "" {
		p.AuthMountPath = "kubernetes"
	}
	p.AuthMountPath = strings.Trim(p.AuthMountPath, "/")
	p.AuthMountPath = strings.TrimPrefix(p.AuthMountPath, "auth/")
	if p.Audience == "" {
		p.Audience = "vault"
	}
	if (id.Namespace == "" || id.ServiceAccount == "") && b.opts.CallerToken == "" {
		return nil, fmt.Errorf("vault: SecretProviderClass %s: the mount names no ServiceAccount: %w", plan.Class, provider.ErrInvalid)
	}
	c, err := b.client(clientKey{
		address:       p.Address,
		namespace:     p.Namespace,
		caCert:        p.CACertPath,
		caDir:         p.CADirectory,
		serverName:    p.TLSServerName,
		skipVerify:    p.SkipTLSVerify,
		clientCert:    p.TLSClientCertPath,
		clientKeyPath: p.TLSClientKeyPath,
	})
	if err != nil {
		return nil, err
	}
	return &session{
		b:      b,
		plan:   plan,
		id:     id,
		params: p,
		client: c,
		tokenKey: tokenKey{
			address:   p.Address,
			namespace: p.Namespace,
			mount:     p.AuthMountPath,
			role:      p.RoleName,
			identity:  id.Key(),
		},
	}, nil
}

// request is an object's Vault request as written, before KV v2 path resolution.
type request struct {
	path    string     // without "?..." and surrounding slashes
	query   url.Values // from "?..." (version=N among them)
	version string     // query "version"
	method  string     // GET, POST or PUT
	body    map[string]any
	// sharedKey identifies the read within one Fetch: objects with equal keys share it.
	sharedKey string
}

func (s *session) request(obj *providerclass.Object) (*request, error) {
	raw := obj.SecretPath
	pathPart, queryPart, _ := strings.Cut(raw, "?")
	pathPart = strings.Trim(pathPart, "/")
	if pathPart == "" {
		return nil, fmt.Errorf("vault: %s: secretPath is empty: %w", s.objectRef(obj), provider.ErrInvalid)
	}
	query, err := url.ParseQuery(queryPart)
	if err != nil {
		return nil, fmt.Errorf("vault: %s: secretPath query: %v: %w", s.objectRef(obj), err, provider.ErrInvalid)
	}
	version := query.Get("version")
	if version != "" {
		for _, c := range version {
			if c < '0' || c > '9' {
				return nil, fmt.Errorf("vault: %s: secretPath version %q is not a number: %w", s.objectRef(obj), version, provider.ErrInvalid)
			}
		}
	}
	method := strings.ToUpper(obj.Method)
	if method == "" {
		method = "GET"
	}
	switch method {
	case "GET", "POST", "PUT":
	default:
		return nil, fmt.Errorf("vault: %s: method %q: want GET, POST or PUT: %w", s.objectRef(obj), obj.Method, provider.ErrInvalid)
	}
	if method == "GET" && len(obj.SecretArgs) > 0 {
		return nil, fmt.Errorf("vault: %s: secretArgs need method POST or PUT: %w", s.objectRef(obj), provider.ErrInvalid)
	}
	args, err := json.Marshal(obj.SecretArgs)
	if err != nil {
		return nil, fmt.Errorf("vault: %s: secretArgs cannot be encoded: %w", s.objectRef(obj), provider.ErrInvalid)
	}
	return &request{
		path:      pathPart,
		query:     query,
		version:   version,
		method:    method,
		body:      obj.SecretArgs,
		sharedKey: method + " " + pathPart + "?" + query.Encode() + " " + string(args),
	}, nil
}

// objectRef names an object for error messages: never its value.
func (s *session) objectRef(obj *providerclass.Object) string {
	return fmt.Sprintf("SecretProviderClass %s %s (objectName %q, secretPath %q)", s.plan.Class, obj.Field, obj.Name, obj.SecretPath)
}

// roleRef names the Vault role and identity for error messages.
func (s *session) roleRef() string {
	if s.b.opts.CallerToken != "" {
		return "the caller's own Vault token"
	}
	return fmt.Sprintf("role %q at auth/%s for ServiceAccount %s", s.params.RoleName, s.params.AuthMountPath, s.id.Key())
}
