package aws

import (
	"context"
	"fmt"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// loadBase reads the standard AWS configuration once (AWS_REGION, AWS_ENDPOINT_URL*,
// shared config files) for what it says about regions and endpoints. Its credential
// chain is kept only when ambient credentials are allowed.
func (b *Backend) loadBase(ctx context.Context) error {
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(b.httpClient),
		config.WithRetryer(func() sdkaws.Retryer { return b.retryer() }),
		config.WithLogger(sdkLogger{log: b.log}),
	}
	if b.opts.DefaultRegion != "" {
		opts = append(opts, config.WithRegion(b.opts.DefaultRegion))
	}
	base, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	if b.opts.AllowAmbientCredentials && base.Credentials != nil {
		b.ambient = base.Credentials
	}
	base.Credentials = nil
	// Logging request or response contents would put secret values in the log: the
	// mode stays off whatever the configuration loaded above asked for.
	base.ClientLogMode = 0
	b.base = base
	return nil
}

// retryer retries throttling, 5xx, timeouts, network failures and answers cut short,
// MaxAttempts attempts in all, with jittered exponential backoff. Each client gets its
// own, without a shared retry quota, so one pod's failing secret cannot use up another pod's retries.
func (b *Backend) retryer() sdkaws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = b.opts.MaxAttempts
		o.MaxBackoff = b.opts.MaxBackoff
		o.RateLimiter = ratelimit.None
		o.Retryables = append(o.Retryables, retryTruncated)
	})
}

// config is the base configuration for one region and set of credentials.
func (b *Backend) config(region string, creds sdkaws.CredentialsProvider) sdkaws.Config {
	cfg := b.base.Copy()
	cfg.Region = region
	cfg.Credentials = creds
	return cfg
}

func (b *Backend) secretsManager(region string, s session) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(b.config(region, s.creds), func(o *secretsmanager.Options) {
		if b.opts.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(b.opts.Endpoint)
		}
	})
}

func (b *Backend) parameterStore(region string, s session) *ssm.Client {
	return ssm.NewFromConfig(b.config(region, s.creds), func(o *ssm.Options) {
		if b.opts.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(b.opts.Endpoint)
		}
	})
}

func (b *Backend) stsEndpoint(o *sts.Options) {
	if b.opts.Endpoint != "" {
		o.BaseEndpoint = sdkaws.String(b.opts.Endpoint)
	}
}

func defaultHTTPClient() sdkaws.HTTPClient { return awshttp.NewBuildableClient() }
