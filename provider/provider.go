package provider

import (
	"context"
	"time"

	"github.com/secretmount/secretmount/providerclass"
)

// Provider fetches the objects of a plan with one identity.
type Provider interface {
	// Fetch returns one ObjectContent per plan.Objects entry, in the same order, or an
	// error that wraps one of the error kinds of this package. It never returns a
	// partial result with a nil error.
	Fetch(ctx context.Context, plan *providerclass.Plan, id Identity) ([]providerclass.ObjectContent, error)
}

// Identity is who a fetch is made for: the pod's ServiceAccount and the tokens kubelet
// requested for it (CSIDriver tokenRequests), keyed by audience.
type Identity struct {
	Namespace      string
	ServiceAccount string
	PodName        string
	PodUID         string
	Tokens         map[string]Token
}

// Token is a projected ServiceAccount token for one audience.
type Token struct {
	Token     string
	ExpiresAt time.Time
}

// Key identifies the identity for caches and coalescing: two pods of the same
// ServiceAccount share it, two ServiceAccounts never do.
func (id Identity) Key() string { return id.Namespace + "/" + id.ServiceAccount }

// TokenSource returns a token of the identity for an audience. The driver's identities
// carry the tokens kubelet sent; the sync controller's mint them by TokenRequest.
type TokenSource interface {
	Token(ctx context.Context, id Identity, audience string) (Token, error)
}
