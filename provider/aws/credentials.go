package aws

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/secretmount/secretmount/provider"
)

// Default EKS Pod Identity agent endpoints (link-local, on every EKS node).
const (
	DefaultPodIdentityEndpointIPv4 = "http://169.254.170.23/v1/credentials"
	DefaultPodIdentityEndpointIPv6 = "http://[fd00:ec2::23]/v1/credentials"
)

// session is the credentials one fetch is made with.
type session struct {
	// scope names the credentials in cache and coalescing keys.
	scope string
	creds sdkaws.CredentialsProvider
}

// session resolves the identity's credentials: pod identity when the class asks for
// it, otherwise IRSA; ambient credentials only when allowed and the identity has no
// token at all.
func (b *Backend) session(ctx context.Context, f *fetch) (session, error) {
	if f.params.UsePodIdentity {
		return b.podIdentitySession(ctx, f)
	}
	return b.webIdentitySession(ctx, f)
}

func (b *Backend) webIdentitySession(ctx context.Context, f *fetch) (session, error) {
	id := f.id
	tok, ok, err := b.token(ctx, id, stsAudience)
	if err != nil {
		return session{}, fmt.Errorf("%s: %w", f.class(), err)
	}
	if !ok {
		if b.ambient != nil {
			return session{scope: "ambient", creds: b.ambient}, nil
		}
		return session{}, fmt.Errorf("%s: ServiceAccount %s: no token for audience %s (the CSIDriver tokenRequests must include it): %w",
			f.class(), id.Key(), stsAudience, provider.ErrPermissionDenied)
	}
	if b.opts.Roles == nil {
		return session{}, fmt.Errorf("%s: ServiceAccount %s: no role lookup configured: %w", f.class(), id.Key(), provider.ErrPermissionDenied)
	}
	role, err := b.opts.Roles.RoleARN(ctx, id.Namespace, id.ServiceAccount)
	if err != nil {
		return session{}, fmt.Errorf("%s: %w", f.class(), err)
	}
	if role == "" {
		return session{}, fmt.Errorf("%s: ServiceAccount %s has no %s annotation: %w",
			f.class(), id.Key(), RoleAnnotation, provider.ErrPermissionDenied)
	}
	subject, err := checkedSubject(id, tok.Token, stsAudience)
	if err != nil {
		return session{}, fmt.Errorf("%s: %w", f.class(), err)
	}
	scope := "irsa|" + role + "|" + subject
	creds, err := b.creds.get(ctx, scope, func(ctx context.Context) (sdkaws.Credentials, error) {
		return b.assumeRole(ctx, f, role, tok.Token)
	})
	if err != nil {
		return session{}, err
	}
	return session{scope: scope, creds: staticCredentials(creds)}, nil
}

// assumeRole exchanges the token in the primary region's STS, and in the failover
// region's when the primary one is unavailable.
func (b *Backend) assumeRole(ctx context.Context, f *fetch, role, token string) (sdkaws.Credentials, error) {
	var lastErr error
	for _, region := range f.regions {
		client := sts.NewFromConfig(b.config(region, nil), b.stsEndpoint)
		out, err := client.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn:          sdkaws.String(role),
			RoleSessionName:  sdkaws.String(sessionName(f.id)),
			WebIdentityToken: sdkaws.String(token),
		})
		if err == nil {
			if out.Credentials == nil || out.Credentials.AccessKeyId == nil || out.Credentials.SecretAccessKey == nil {
				return sdkaws.Credentials{}, fmt.Errorf("%s: assume role %s in %s: response has no credentials: %w",
					f.class(), role, region, provider.ErrUnavailable)
			}
			c := out.Credentials
			creds := sdkaws.Credentials{
				AccessKeyID:     *c.AccessKeyId,
				SecretAccessKey: *c.SecretAccessKey,
				SessionToken:    sdkaws.ToString(c.SessionToken),
				Source:          "secretmount web identity",
			}
			if c.Expiration != nil {
				creds.CanExpire, creds.Expires = true, *c.Expiration
			}
			return creds, nil
		}
		lastErr = classify(fmt.Sprintf("%s: assume role %s for ServiceAccount %s in %s", f.class(), role, f.id.Key(), region), err)
		if !retryable(lastErr) || ctx.Err() != nil {
			break
		}
	}
	return sdkaws.Credentials{}, lastErr
}

func (b *Backend) podIdentitySession(ctx context.Context, f *fetch) (session, error) {
	id := f.id
	tok, ok, err := b.token(ctx, id, podIdentityAudience)
	if err != nil {
		return session{}, fmt.Errorf("%s: %w", f.class(), err)
	}
	if !ok {
		return session{}, fmt.Errorf("%s: usePodIdentity: ServiceAccount %s: no token for audience %s (the CSIDriver tokenRequests must include it): %w",
			f.class(), id.Key(), podIdentityAudience, provider.ErrPermissionDenied)
	}
	subject, err := checkedSubject(id, tok.Token, podIdentityAudience)
	if err != nil {
		return session{}, fmt.Errorf("%s: %w", f.class(), err)
	}
	scope := "pod-identity|" + subject
	creds, err := b.creds.get(ctx, scope, func(ctx context.Context) (sdkaws.Credentials, error) {
		var lastErr error
		for _, endpoint := range b.agentEndpoints(f.params.PreferredAddressType) {
			p := endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
				o.AuthorizationToken = tok.Token
				o.HTTPClient = b.httpClient
				o.Retryer = b.retryer()
			})
			creds, err := p.Retrieve(ctx)
			if err == nil {
				return creds, nil
			}
			lastErr = classify(fmt.Sprintf("%s: pod identity agent %s for ServiceAccount %s", f.class(), endpoint, id.Key()), err)
			if ctx.Err() != nil {
				break
			}
		}
		return sdkaws.Credentials{}, lastErr
	})
	if err != nil {
		return session{}, err
	}
	return session{scope: scope, creds: staticCredentials(creds)}, nil
}

// agentEndpoints lists the pod identity agent endpoints to try, in order: the
// configured one, or the EKS defaults by the class's preferredAddressType.
func (b *Backend) agentEndpoints(preferred string) []string {
	if b.opts.PodIdentityAgentEndpoint != "" {
		return []string{b.opts.PodIdentityAgentEndpoint}
	}
	switch strings.ToLower(preferred) {
	case "ipv4":
		return []string{DefaultPodIdentityEndpointIPv4}
	case "ipv6":
		return []string{DefaultPodIdentityEndpointIPv6}
	}
	return []string{DefaultPodIdentityEndpointIPv4, DefaultPodIdentityEndpointIPv6}
}

func checkedSubject(id provider.Identity, token, audience string) (string, error) {
	subject, err := tokenSubject(token)
	if err != nil {
		return "", fmt.Errorf("ServiceAccount %s: token for audience %s: %v: %w", id.Key(), audience, err, provider.ErrPermissionDenied)
	}
	if err := checkSubject(id, subject); err != nil {
		return "", fmt.Errorf("audience %s: %v: %w", audience, err, provider.ErrPermissionDenied)
	}
	return subject, nil
}

// staticCredentials hands the SDK the cached credentials as they are: the cache renews
// them well before expiry, and AWS itself refuses expired ones.
func staticCredentials(c sdkaws.Credentials) sdkaws.CredentialsProvider {
	return sdkaws.CredentialsProviderFunc(func(context.Context) (sdkaws.Credentials, error) {
		return c, nil
	})
}

var sessionNameInvalid = regexp.MustCompile(`[^\w+=,.@-]`)

// sessionName names the STS session after the ServiceAccount, so CloudTrail shows who
// read what.
func sessionName(id provider.Identity) string {
	name := "secretmount"
	if id.Namespace != "" {
		name += "." + id.Namespace + "." + id.ServiceAccount
	}
	name = sessionNameInvalid.ReplaceAllString(name, "-")
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}
