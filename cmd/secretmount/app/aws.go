package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
)

// The AWS backend for spec.provider "aws" in every command that fetches.
func init() {
	commandHooks = append(commandHooks, func(cmd *cobra.Command) {
		switch cmd.Name() {
		case "driver", "sync", "provider", "render":
			awsFlags.addFlags(cmd)
		}
	})
	driverBackends = append(driverBackends, awsFlags.register)
	syncBackends = append(syncBackends, awsFlags.register)
	providerBackends = append(providerBackends, awsFlags.register)
}

// awsFlags is shared by the commands because the registration functions take only the
// registry; one process runs one command, so one set of values is in play.
var awsFlags = &awsOptions{}

// awsOptions are the AWS backend's flags. Defaults come from SECRETMOUNT_AWS_*
// variables when set; SecretProviderClass parameters (region, failoverRegion) override
// them. AWS_REGION and AWS_ENDPOINT_URL* apply when the flags are empty.
type awsOptions struct {
	region          string
	endpoint        string
	podIdentity     string
	allowAmbient    bool
	disableBatchGet bool
	cmd             *cobra.Command
}

func (o *awsOptions) addFlags(cmd *cobra.Command) {
	o.cmd = cmd
	bindRunningCommand(cmd, &o.cmd)
	f := cmd.Flags()
	f.StringVar(&o.region, "aws-region", os.Getenv("SECRETMOUNT_AWS_REGION"),
		"AWS region for SecretProviderClasses that set no region, usually the node's (env SECRETMOUNT_AWS_REGION; AWS_REGION when empty)")
	f.StringVar(&o.endpoint, "aws-endpoint", os.Getenv("SECRETMOUNT_AWS_ENDPOINT"),
		"endpoint for Secrets Manager, SSM and STS, e.g. a private endpoint (env SECRETMOUNT_AWS_ENDPOINT; AWS_ENDPOINT_URL* when empty)")
	f.StringVar(&o.podIdentity, "aws-pod-identity-agent-endpoint", os.Getenv("SECRETMOUNT_AWS_POD_IDENTITY_AGENT_ENDPOINT"),
		"EKS Pod Identity agent credentials URL for usePodIdentity classes; empty means the EKS defaults "+aws.DefaultPodIdentityEndpointIPv4+" and "+aws.DefaultPodIdentityEndpointIPv6)
	f.BoolVar(&o.disableBatchGet, "aws-disable-batch-get", false,
		"read Secrets Manager objects one by one, for accounts that do not allow secretsmanager:BatchGetSecretValue")
	f.BoolVar(&o.allowAmbient, "aws-allow-ambient-credentials", false,
		"let fetches without a ServiceAccount token use this process's own AWS credentials: for render and local development only, never on a node")
}

func (o *awsOptions) register(reg *provider.Registry) error {
	b, err := aws.New(context.Background(), aws.Options{
		DefaultRegion:            o.region,
		Endpoint:                 o.endpoint,
		PodIdentityAgentEndpoint: o.podIdentity,
		AllowAmbientCredentials:  o.allowAmbient,
		DisableBatchGet:          o.disableBatchGet,
		Roles:                    o.roles(),
		Logger:                   klog.NewKlogr().WithName("aws"),
	})
	if err != nil {
		return fmt.Errorf("aws backend: %w", err)
	}
	reg.Register("aws", b)
	return nil
}

// roles reads ServiceAccount role annotations with the command's Kubernetes
// configuration, through an informer that lives as long as the process. Without a
// configuration (render outside a cluster), IRSA fetches fail with that reason instead
// of the command failing to start.
func (o *awsOptions) roles() aws.RoleResolver {
	kubeconfig := ""
	if o.cmd != nil {
		if f := o.cmd.Flags().Lookup("kubeconfig"); f != nil {
			kubeconfig = f.Value.String()
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return rolesError{fmt.Errorf("kubernetes configuration for ServiceAccount roles: %w: %w", provider.ErrUnavailable, err)}
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return rolesError{fmt.Errorf("kubernetes client for ServiceAccount roles: %w: %w", provider.ErrUnavailable, err)}
	}
	roles, err := aws.NewServiceAccountRoles(client, 10*time.Minute)
	if err != nil {
		return rolesError{err}
	}
	roles.Run(context.Background())
	return roles
}

type rolesError struct{ err error }

func (r rolesError) RoleARN(context.Context, string, string) (string, error) { return "", r.err }
