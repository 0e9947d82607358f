package sync

import (
	"context"
	"fmt"
	gosync "sync"
	"time"

	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// tokenTTL is what the controller asks for; the API server's minimum is ten minutes.
const tokenTTL = 10 * time.Minute

// TokenRequester mints ServiceAccount tokens by TokenRequest, always in the identity's own
// namespace, and reuses each until half its lifetime is gone. Concurrent callers for one
// (ServiceAccount, audience) share one TokenRequest, so several reconcile workers starting
// on SecretSyncs of one ServiceAccount make one identity exchange, not one each.
type TokenRequester struct {
	client kubernetes.Interface
	now    func() time.Time
	flight singleflight.Group

	mu    gosync.Mutex
	cache map[tokenKey]provider.Token
}

type tokenKey struct{ namespace, serviceAccount, audience string }

// flightKey is tokenKey as one string; the parts are Kubernetes names and an audience,
// none of which holds a newline.
func (k tokenKey) flightKey() string {
	return k.namespace + "\n" + k.serviceAccount + "\n" + k.audience
}

var _ provider.TokenSource = (*TokenRequester)(nil)

// NewTokenRequester returns a TokenSource backed by the TokenRequest API.
func NewTokenRequester(client kubernetes.Interface) *TokenRequester {
	return &TokenRequester{client: client, now: time.Now, cache: map[tokenKey]provider.Token{}}
}

// Token returns a token of id's ServiceAccount for audience.
func (r *TokenRequester) Token(ctx context.Context, id provider.Identity, audience string) (provider.Token, error) {
	key := tokenKey{id.Namespace, id.ServiceAccount, audience}
	if tok, ok := r.cached(key); ok {
		return tok, nil
	}
	ch := r.flight.DoChan(key.flightKey(), func() (any, error) {
		// A caller that arrived just after the last request finished finds it here.
		if tok, ok := r.cached(key); ok {
			return tok, nil
		}
		// The request is shared: one caller giving up must not fail the others, so it
		// keeps only the caller's deadline.
		callCtx := context.WithoutCancel(ctx)
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			callCtx, cancel = context.WithDeadline(callCtx, deadline)
			defer cancel()
		}
		return r.request(callCtx, key)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return provider.Token{}, res.Err
		}
		return res.Val.(provider.Token), nil
	case <-ctx.Done():
		return provider.Token{}, ctx.Err()
	}
}

// cached is the token of key while more than half its lifetime is left.
func (r *TokenRequester) cached(key tokenKey) (provider.Token, bool) {
	r.mu.Lock()
	tok, ok := r.cache[key]
	r.mu.Unlock()
	return tok, ok && r.now().Before(tok.ExpiresAt.Add(-tokenTTL/2))
}

func (r *TokenRequester) request(ctx context.Context, key tokenKey) (provider.Token, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{key.audience},
		ExpirationSeconds: ptrTo(int64(tokenTTL / time.Second)),
	}}
	resp, err := r.client.CoreV1().ServiceAccounts(key.namespace).CreateToken(quiet(ctx), key.serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return provider.Token{}, fmt.Errorf("failed to request a token of ServiceAccount %s/%s for audience %q: %w", key.namespace, key.serviceAccount, key.audience, err)
	}
	tok := provider.Token{Token: resp.Status.Token, ExpiresAt: resp.Status.ExpirationTimestamp.Time}
	r.mu.Lock()
	r.cache[key] = tok
	r.mu.Unlock()
	return tok, nil
}

// identity builds the identity a SecretSync fetches with: its ServiceAccount in its own
// namespace, with a token for each audience the plan's provider needs.
func identity(ctx context.Context, tokens provider.TokenSource, namespace, serviceAccount string, plan *providerclass.Plan) (provider.Identity, error) {
	id := provider.Identity{Namespace: namespace, ServiceAccount: serviceAccount, Tokens: map[string]provider.Token{}}
	// External providers authenticate by their own means and get no token.
	if aud := plan.TokenAudience(); aud != "" {
		tok, err := tokens.Token(ctx, id, aud)
		if err != nil {
			return provider.Identity{}, err
		}
		id.Tokens[aud] = tok
	}
	return id, nil
}
