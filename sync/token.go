package sync

import (
	"context"
	"fmt"
	gosync "sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// tokenTTL is what the controller asks for; the API server's minimum is ten minutes.
const tokenTTL = 10 * time.Minute

// TokenRequester mints ServiceAccount tokens by TokenRequest, always in the identity's own
// namespace, and reuses each until half its lifetime is gone.
type TokenRequester struct {
	client kubernetes.Interface
	now    func() time.Time

	mu    gosync.Mutex
	cache map[tokenKey]provider.Token
}

type tokenKey struct{ namespace, serviceAccount, audience string }

var _ provider.TokenSource = (*TokenRequester)(nil)

// NewTokenRequester returns a TokenSource backed by the TokenRequest API.
func NewTokenRequester(client kubernetes.Interface) *TokenRequester {
	return &TokenRequester{client: client, now: time.Now, cache: map[tokenKey]provider.Token{}}
}

// Token returns a token of id's ServiceAccount for audience.
func (r *TokenRequester) Token(ctx context.Context, id provider.Identity, audience string) (provider.Token, error) {
	key := tokenKey{id.Namespace, id.ServiceAccount, audience}
	now := r.now()
	r.mu.Lock()
	tok, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Before(tok.ExpiresAt.Add(-tokenTTL/2)) {
		return tok, nil
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: ptrTo(int64(tokenTTL / time.Second)),
	}}
	resp, err := r.client.CoreV1().ServiceAccounts(id.Namespace).CreateToken(quiet(ctx), id.ServiceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return provider.Token{}, fmt.Errorf("failed to request a token of ServiceAccount %s/%s for audience %q: %w", id.Namespace, id.ServiceAccount, audience, err)
	}
	tok = provider.Token{Token: resp.Status.Token, ExpiresAt: resp.Status.ExpirationTimestamp.Time}
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
