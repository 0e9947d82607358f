package aws

import (
	"context"
	"fmt"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

var _ provider.Provider = (*Backend)(nil)

// Options configure a Backend. Zero values take the documented defaults.
type Options struct {
	// DefaultRegion is used when a class has no region parameter (the driver's
	// --aws-region flag; AWS_REGION when empty).
	DefaultRegion string
	// Endpoint overrides the Secrets Manager, SSM and STS endpoints (a private endpoint,
	// an emulator). Without it the standard AWS_ENDPOINT_URL* variables apply.
	Endpoint string
	// PodIdentityAgentEndpoint is the EKS Pod Identity agent's credentials URL; empty
	// means the EKS defaults by preferredAddressType.
	PodIdentityAgentEndpoint string
	// DisableBatchGet reads Secrets Manager objects one by one, for accounts whose
	// policies do not allow secretsmanager:BatchGetSecretValue (a denied batch falls back
	// on its own; this only saves the denied call).
	DisableBatchGet bool
	// AllowAmbientCredentials lets an identity without a token use the process's own
	// AWS credentials. Only for `render` and local development: never on a node.
	AllowAmbientCredentials bool

	// Roles looks up the IAM role of a ServiceAccount (production: ServiceAccountRoles).
	Roles RoleResolver
	// Tokens mints a token when an identity does not carry one for an audience.
	Tokens provider.TokenSource
	// HTTPClient sends every AWS request; nil means the SDK's default client.
	HTTPClient sdkaws.HTTPClient
	Logger     logr.Logger

	// MaxAttempts bounds the attempts per AWS request (default 3).
	MaxAttempts int
	// MaxBackoff bounds the wait between attempts (default 2s).
	MaxBackoff time.Duration
	// CredentialRenewMargin is how long before expiry credentials are renewed (default 5m).
	CredentialRenewMargin time.Duration
	// CoalesceWindow is how long a successful call's result answers identical calls
	// (default 2s).
	CoalesceWindow time.Duration
	// ContentTTL is how long the last content of an object is remembered without use
	// (default 1h); it lets a refresh skip objects whose version did not change.
	ContentTTL time.Duration
	// Concurrency bounds the AWS calls one fetch makes at a time (default 8).
	Concurrency int
	// Now is the clock (tests).
	Now func() time.Time
}

// Backend fetches `provider: aws` plans from Secrets Manager and SSM Parameter Store.
type Backend struct {
	opts       Options
	log        logr.Logger
	httpClient sdkaws.HTTPClient
	base       sdkaws.Config
	ambient    sdkaws.CredentialsProvider

	creds   *credentialCache
	calls   *provider.Coalescer[any]
	content *contentMemory
	denied  *batchDenials
}

// New builds a Backend. It reads the standard AWS configuration but makes no request.
func New(ctx context.Context, opts Options) (*Backend, error) {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 2 * time.Second
	}
	if opts.CredentialRenewMargin <= 0 {
		opts.CredentialRenewMargin = 5 * time.Minute
	}
	if opts.CoalesceWindow <= 0 {
		opts.CoalesceWindow = 2 * time.Second
	}
	if opts.ContentTTL <= 0 {
		opts.ContentTTL = time.Hour
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	b := &Backend{
		opts:       opts,
		log:        opts.Logger,
		httpClient: opts.HTTPClient,
		creds:      newCredentialCache(opts.CredentialRenewMargin, opts.Now),
		calls:      provider.NewCoalescer[any](provider.WithWindow(opts.CoalesceWindow), provider.WithClock(opts.Now)),
		content:    newContentMemory(opts.ContentTTL, opts.Now),
		denied:     newBatchDenials(10*time.Minute, opts.Now),
	}
	if b.httpClient == nil {
		b.httpClient = defaultHTTPClient()
	}
	if err := b.loadBase(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// fetch is the state of one Fetch call.
type fetch struct {
	plan    *providerclass.Plan
	params  providerclass.AWSParameters
	id      provider.Identity
	regions []string // primary, then the failover region if any
	sess    session
	results []providerclass.ObjectContent
}

func (f *fetch) class() string { return "SecretProviderClass " + f.plan.Class.String() }

// Fetch returns one content per plan object, in order, fetched with the identity's own
// credentials. It returns nothing when any object fails.
func (b *Backend) Fetch(ctx context.Context, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	f, err := b.newFetch(plan, id)
	if err != nil {
		return nil, err
	}
	if len(plan.Objects) == 0 {
		return []providerclass.ObjectContent{}, nil
	}
	if f.sess, err = b.session(ctx, f); err != nil {
		return nil, err
	}
	var secrets, parameters []int
	for i, o := range plan.Objects {
		if o.Type == typeSecretsManager {
			secrets = append(secrets, i)
		} else {
			parameters = append(parameters, i)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	if len(secrets) > 0 {
		g.Go(func() error { return b.fetchSecrets(gctx, f, secrets) })
	}
	if len(parameters) > 0 {
		g.Go(func() error { return b.fetchParameters(gctx, f, parameters) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return f.results, nil
}

// keyOf starts every coalescing and memory key: the identity and its credentials, so
// two ServiceAccounts (or one whose role changed) never share a call or content.
func (f *fetch) keyOf(parts ...string) string {
	return provider.CoalesceKey(f.id, append([]string{f.sess.scope}, parts...)...)
}

func (f *fetch) set(i int, version string, value []byte) {
	f.results[i] = providerclass.ObjectContent{Bytes: append([]byte(nil), value...), Version: version}
}

// objectName describes plan object i for messages and logs, never with its value.
func (f *fetch) objectName(i int) string {
	o := f.plan.Objects[i]
	return fmt.Sprintf("%s object %q (%s)", o.Type, o.Name, o.Field)
}
