package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/vault"
)

// The Vault backend for spec.provider "vault" in every command that fetches.
func init() {
	commandHooks = append(commandHooks, func(cmd *cobra.Command) {
		switch cmd.Name() {
		case "driver", "sync", "provider":
			vaultFlags.addFlags(cmd)
		}
	})
	driverBackends = append(driverBackends, vaultFlags.register)
	syncBackends = append(syncBackends, vaultFlags.register)
	providerBackends = append(providerBackends, vaultFlags.register)
}

// vaultFlags is shared by the commands because the registration functions take only
// the registry; one process runs one command, so one set of values is in play.
var vaultFlags = &vaultOptions{}

// vaultOptions are the Vault backend's flags. Their defaults come from SECRETMOUNT_VAULT_*
// variables when set; SecretProviderClass parameters (vaultAddress) override them.
type vaultOptions struct {
	address       string
	renewFraction float64
	keySecret     string
	// cmd is the command that runs, for its --kubeconfig.
	cmd *cobra.Command
}

func (o *vaultOptions) addFlags(cmd *cobra.Command) {
	bindRunningCommand(cmd, &o.cmd)
	f := cmd.Flags()
	f.StringVar(&o.address, "vault-address", os.Getenv("SECRETMOUNT_VAULT_ADDRESS"),
		"Vault address for SecretProviderClasses that set no vaultAddress (env SECRETMOUNT_VAULT_ADDRESS)")
	fraction := vault.DefaultRenewFraction
	if s := os.Getenv("SECRETMOUNT_VAULT_RENEW_FRACTION"); s != "" {
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			fraction = v
		}
	}
	f.Float64Var(&o.renewFraction, "vault-renew-fraction", fraction,
		"share of a Vault lease's TTL after which dynamic credentials are renewed rather than reused as is (env SECRETMOUNT_VAULT_RENEW_FRACTION)")
	key := os.Getenv("SECRETMOUNT_VAULT_VERSION_KEY_SECRET")
	if key == "" {
		ns := os.Getenv("POD_NAMESPACE")
		if ns == "" {
			ns = "kube-system"
		}
		key = ns + "/secretmount-vault-version-key"
	}
	f.StringVar(&o.keySecret, "vault-version-key-secret", key,
		"namespace/name of the Secret holding the key of Vault object versions; created when missing (env SECRETMOUNT_VAULT_VERSION_KEY_SECRET)")
}

func (o *vaultOptions) register(reg *provider.Registry) error {
	ns, name, ok := strings.Cut(o.keySecret, "/")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("--vault-version-key-secret %q: want namespace/name", o.keySecret)
	}
	b, err := vault.New(vault.Options{
		DefaultAddress: o.address,
		RenewFraction:  o.renewFraction,
		Keys:           o.keySource(ns, name),
	})
	if err != nil {
		return fmt.Errorf("--vault-renew-fraction: %w", err)
	}
	reg.Register("vault", b)
	return nil
}

// keySource reads the version key with the command's Kubernetes configuration. When
// there is none (a provider command outside a cluster), Vault fetches fail with that
// reason instead of the command failing to start.
func (o *vaultOptions) keySource(ns, name string) vault.KeySource {
	kubeconfig := ""
	if o.cmd != nil {
		if f := o.cmd.Flags().Lookup("kubeconfig"); f != nil {
			kubeconfig = f.Value.String()
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return keyError{fmt.Errorf("kubernetes configuration for the Vault version key Secret %s/%s: %w", ns, name, err)}
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return keyError{fmt.Errorf("kubernetes client for the Vault version key Secret %s/%s: %w", ns, name, err)}
	}
	return &vault.SecretKeySource{Client: client, Namespace: ns, Name: name}
}

type keyError struct{ err error }

func (k keyError) Key(context.Context) ([]byte, error) { return nil, k.err }
