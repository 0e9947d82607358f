package app

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/plugin"
)

func init() { subcommands = append(subcommands, newProviderCommand) }

// providerBackends add the built-in backends `secretmount provider` can serve; the
// backend registrations of this package append to it, as to syncBackends.
var providerBackends []func(*provider.Registry) error

// providerOptions are the flags of `secretmount provider`.
type providerOptions struct {
	kubeconfig string
	dir        string
	name       string
	backend    string
	timeout    time.Duration
	runtime    runtimeOptions
	log        logOptions
}

func newProviderCommand() *cobra.Command {
	o := &providerOptions{}
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Serve the Secrets Store CSI Driver's provider API, so the upstream driver can use our backends",
		Long: `Serve CSIDriverProvider (secrets-store-csi-driver provider/v1alpha1) on <provider-volume>/<provider-name>.sock.

The upstream driver calls the socket named after a SecretProviderClass's spec.provider, so
--provider-name=aws (or vault) lets existing classes keep working when the AWS (or Vault)
provider's DaemonSet is replaced by this one. --backend chooses which built-in backend, and
so which parameter dialect, serves the requests; it defaults to the provider name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	// Backends read it by flag name when they need the API server (Vault's version
	// key Secret, the AWS roles of ServiceAccounts), as in the driver and sync commands.
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file for backends that read the API server; empty means the in-cluster configuration")
	f.StringVar(&o.dir, "provider-volume", plugin.DefaultDirs[0], "folder of the provider socket, shared with the upstream driver")
	f.StringVar(&o.name, "provider-name", "secretmount", "provider name to answer as: the socket's base name (aws, vault, ...)")
	f.StringVar(&o.backend, "backend", "", "built-in backend serving the requests (aws or vault); empty means --provider-name")
	f.DurationVar(&o.timeout, "provider-timeout", 30*time.Second, "bound on each Mount call")
	o.runtime.addFlags(f)
	o.log.addFlags(f)
	return cmd
}

func (o *providerOptions) run(cmd *cobra.Command) error {
	log, err := o.log.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	stopRuntime, err := o.runtime.start(nodeGCPercent)
	if err != nil {
		return err
	}
	defer stopRuntime()
	reg := provider.NewRegistry()
	for _, add := range providerBackends {
		if err := add(reg); err != nil {
			return err
		}
	}
	srv, err := plugin.NewServer(plugin.ServerOptions{
		Name: o.name, Backend: o.backend, Registry: reg, Timeout: o.timeout, RuntimeVersion: Version(),
	})
	if err != nil {
		return err
	}
	log.Info("serving the provider API", "provider", o.name, "backend", o.backend, "socket", filepath.Join(o.dir, o.name+".sock"))
	return srv.Serve(cmd.Context(), o.dir)
}

// externalProviderOptions are the driver's settings for external provider plugins:
// where their sockets are, and which built-in backends to switch off so that an
// external provider of the same name is called instead. The driver command adds the
// flags with addFlags and wraps its registry of built-in backends with registry.
type externalProviderOptions struct {
	dirs     []string
	disabled []string
}

func (o *externalProviderOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&o.dirs, "provider-volume", plugin.DefaultDirs, "folders searched, in order, for <provider>.sock of external providers")
	f.StringSliceVar(&o.disabled, "disable-builtin-provider", nil, "provider names (aws, vault) whose built-in backend is switched off, so that an external provider of that name serves them")
}

// registry returns the backends of builtin minus the switched-off ones, falling back to
// external providers for every other name, and the function that closes their
// connections.
func (o *externalProviderOptions) registry(builtin *provider.Registry, timeout time.Duration) (*provider.Registry, func() error, error) {
	off := map[string]bool{}
	for _, name := range o.disabled {
		if !plugin.ValidProviderName(name) {
			return nil, nil, fmt.Errorf("--disable-builtin-provider %q is not a provider name", name)
		}
		off[name] = true
	}
	reg := provider.NewRegistry()
	for _, name := range builtin.Names() {
		if off[name] {
			continue
		}
		p, err := builtin.Get(name)
		if err != nil {
			return nil, nil, err
		}
		reg.Register(name, p)
	}
	clients := plugin.NewClients(plugin.ClientOptions{Dirs: o.dirs, Timeout: timeout})
	reg.SetFallback(clients.Lookup)
	return reg, clients.Close, nil
}
