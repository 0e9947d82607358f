package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// readResult is one Vault answer reduced to what objects are made from.
type readResult struct {
	// data is the secret's data; for KV v2 the inner data without metadata.
	data map[string]any
	// kv2Version is the KV v2 version number, "" for anything else.
	kv2Version string
}

// read returns the answer for req, coalesced with identical reads of the same identity.
func (s *session) read(ctx context.Context, obj *providerclass.Object, req *request) (*readResult, error) {
	key := provider.CoalesceKey(s.id, s.params.Address, s.params.Namespace, req.sharedKey)
	res, err := s.b.reads.Do(ctx, key, func(ctx context.Context) (*readResult, error) {
		return s.readOnce(ctx, obj, req)
	})
	if err != nil && !provider.HasKind(err) {
		return nil, fmt.Errorf("vault read of %s: %w: %w", s.objectRef(obj), provider.ErrUnavailable, err)
	}
	return res, err
}

// readOnce reads with the cached token and, if Vault refuses a cached token, once more
// after a new login.
func (s *session) readOnce(ctx context.Context, obj *providerclass.Object, req *request) (*readResult, error) {
	what := fmt.Sprintf("vault %s of %s with %s", req.method, s.objectRef(obj), s.roleRef())
	token, fresh, err := s.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: reading %s: %w", s.objectRef(obj), err)
	}
	res, err := s.readWith(ctx, obj, req, token)
	if err != nil && isForbidden(err) && !fresh {
		s.forgetToken(token)
		if token, _, err = s.token(ctx); err != nil {
			return nil, fmt.Errorf("vault: reading %s: %w", s.objectRef(obj), err)
		}
		res, err = s.readWith(ctx, obj, req, token)
	}
	if err != nil {
		if provider.HasKind(err) {
			return nil, err
		}
		return nil, classify(err, what)
	}
	return res, nil
}

func (s *session) readWith(ctx context.Context, obj *providerclass.Object, req *request, token string) (*readResult, error) {
	apiPath, kv2 := req.path, false
	if req.method == "GET" {
		m, ok, err := s.mount(ctx, token, req.path)
		if err != nil {
			return nil, classify(err, "vault mount lookup for "+s.objectRef(obj))
		}
		if ok {
			if m.kv2 {
				apiPath, kv2 = kv2DataPath(m, req.path), true
			} else if req.version != "" {
				return nil, fmt.Errorf("vault: %s: ?version= needs a KV v2 mount, and %q is not one: %w", s.objectRef(obj), m.path, provider.ErrInvalid)
			}
		}
	}
	leaseKey := provider.CoalesceKey(s.id, s.params.Address, s.params.Namespace, req.sharedKey)
	if res, ok := s.reuseLease(ctx, leaseKey, token); ok {
		return res, nil
	}
	r := s.client.NewRequest(req.method, "/v1/"+apiPath)
	r.ClientToken = token
	if len(req.query) > 0 {
		r.Params = req.query
	}
	if req.method != "GET" {
		body := req.body
		if body == nil {
			body = map[string]any{}
		}
		if err := r.SetJSONBody(body); err != nil {
			return nil, fmt.Errorf("vault: %s: secretArgs: %v: %w", s.objectRef(obj), err, provider.ErrInvalid)
		}
	}
	now := s.b.opts.Now()
	secret, err := s.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if secret == nil || secret.Data == nil {
		// Vault answers a missing path with 404 (classified above). A read answered with
		// success and no data is an answer gone wrong on the way, kept content stays; a
		// write answered so is an endpoint that issues nothing, which no retry changes.
		if req.method == "GET" {
			return nil, fmt.Errorf("vault: %s: %s answered without data: %w", s.objectRef(obj), apiPath, provider.ErrUnavailable)
		}
		return nil, fmt.Errorf("vault: %s: %s %s answered without data: it issues no secret: %w", s.objectRef(obj), req.method, apiPath, provider.ErrInvalid)
	}
	res, err := resultOf(secret, kv2)
	if err != nil {
		return nil, fmt.Errorf("vault: %s: %v: %w", s.objectRef(obj), err, provider.ErrNotFound)
	}
	switch {
	case secret.LeaseID != "" && secret.LeaseDuration > 0:
		s.b.leases.put(leaseKey, newLease(secret, res, now), now)
	case req.method != "GET":
		// Issuing engines such as PKI answer without a lease but with the expiry of
		// what they issued: reuse it like a lease that cannot be renewed, rather than
		// issuing again on every poll.
		if exp, ok := expirationOf(secret.Data); ok && exp.After(now) {
			s.b.leases.put(leaseKey, &leaseEntry{res: res, issued: now, ttl: exp.Sub(now), firstTTL: exp.Sub(now)}, now)
		}
	}
	return res, nil
}

// resultOf reduces an answer. A KV v2 answer is recognised by the mount lookup, or,
// when that was not allowed, by its shape (data and metadata objects), as upstream does.
func resultOf(secret *vaultapi.Secret, kv2 bool) (*readResult, error) {
	inner, innerOK := secret.Data["data"].(map[string]any)
	meta, metaOK := secret.Data["metadata"].(map[string]any)
	if !kv2 && !(innerOK && metaOK) {
		return &readResult{data: secret.Data}, nil
	}
	if !innerOK {
		// KV v2 answers a deleted or destroyed version with data: null.
		return nil, errors.New("the KV v2 version has no data (deleted or destroyed)")
	}
	res := &readResult{data: inner}
	if metaOK {
		switch v := meta["version"].(type) {
		case json.Number:
			res.kv2Version = v.String()
		case float64:
			res.kv2Version = fmt.Sprintf("%d", int64(v))
		}
	}
	return res, nil
}

// expirationOf reads an "expiration" field in Unix seconds, as PKI's issue answers.
func expirationOf(data map[string]any) (time.Time, bool) {
	var sec int64
	switch v := data["expiration"].(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return time.Time{}, false
		}
		sec = n
	case float64:
		sec = int64(v)
	default:
		return time.Time{}, false
	}
	if sec <= 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}
