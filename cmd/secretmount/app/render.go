package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	sigyaml "sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/sync"
)

func init() { subcommands = append(subcommands, newRenderCommand) }

// renderOptions are the flags of `secretmount render`.
type renderOptions struct {
	file           string
	out            string
	dryRun         bool
	namespace      string
	serviceAccount string
	kubeconfig     string
	vaultAddress   string
	timeout        time.Duration
}

func newRenderCommand() *cobra.Command {
	o := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "render -f spc.yaml (--out DIR | --dry-run)",
		Short: "Fetch one SecretProviderClass with your own credentials and write the files a mount would hold",
		Long: `Plan a SecretProviderClass exactly as the driver does (same validation errors), fetch
its objects with the same backends and write the files, with the layout and modes of a
mounted volume, to --out.

Credentials are the caller's own: for AWS the default chain (environment, profile, SSO,
instance role); for Vault the token in VAULT_TOKEN (VAULT_ADDR for classes without
vaultAddress). With --service-account (and a kubeconfig: --kubeconfig or KUBECONFIG) the
fetch authenticates as that ServiceAccount instead, as its pods would: a TokenRequest
token for Vault's Kubernetes login or for the ServiceAccount's IRSA role.

--dry-run prints the plan (files, modes, sources and synced Secrets) and contacts nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "filename", "f", "", "SecretProviderClass YAML file (required)")
	f.StringVar(&o.out, "out", "", "folder to write the files to; created when missing")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan without fetching")
	f.StringVar(&o.namespace, "namespace", "", "namespace of the mount; empty means the class's own, or default")
	f.StringVar(&o.serviceAccount, "service-account", "", "ServiceAccount whose token authenticates the fetch, as its pods would; empty means your own credentials")
	f.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig for --service-account tokens and IRSA role annotations (env KUBECONFIG)")
	f.StringVar(&o.vaultAddress, "vault-address", os.Getenv("VAULT_ADDR"), "Vault address for classes that set no vaultAddress (env VAULT_ADDR)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "bound on the whole fetch")
	return cmd
}

func (o *renderOptions) run(cmd *cobra.Command) error {
	if o.file == "" {
		return errors.New("-f/--filename is required")
	}
	if o.out == "" && !o.dryRun {
		return errors.New("--out is required unless --dry-run is set")
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	}
	spc, err := readClass(o.file)
	if err != nil {
		return err
	}
	ns := o.namespace
	if ns == "" {
		ns = spc.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	spc.Namespace = ns
	plan, err := providerclass.NewPlan(spc, providerclass.Mount{Namespace: ns, ServiceAccount: o.serviceAccount})
	if err != nil {
		return err
	}
	if o.dryRun {
		printPlan(cmd.OutOrStdout(), plan)
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	files, err := o.fetch(ctx, plan)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create --out folder %s: %w", o.out, err)
	}
	if err := driver.WriteFiles(o.out, files); err != nil {
		return fmt.Errorf("write files of SecretProviderClass %s to %s: %w", plan.Class, o.out, err)
	}
	for _, f := range files {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\t%04o\t%d bytes\n", f.Path, f.Mode.Perm(), len(f.Bytes))
	}
	return nil
}

// readClass reads one SecretProviderClass; unknown fields are refused so a typo is
// reported rather than silently ignored.
func readClass(path string) (*secretsstorev1.SecretProviderClass, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read SecretProviderClass file: %w", err)
	}
	spc := &secretsstorev1.SecretProviderClass{}
	if err := sigyaml.UnmarshalStrict(data, spc); err != nil {
		return nil, fmt.Errorf("SecretProviderClass file %s: %w", path, err)
	}
	if spc.Kind != "SecretProviderClass" || !strings.HasPrefix(spc.APIVersion, "secrets-store.csi.x-k8s.io/") {
		return nil, fmt.Errorf("SecretProviderClass file %s: kind %q, apiVersion %q: want a secrets-store.csi.x-k8s.io SecretProviderClass", path, spc.Kind, spc.APIVersion)
	}
	if spc.Name == "" {
		return nil, fmt.Errorf("SecretProviderClass file %s: metadata.name is empty", path)
	}
	return spc, nil
}

// fetch fetches and renders with the built-in backend the plan names, as the driver does.
func (o *renderOptions) fetch(ctx context.Context, plan *providerclass.Plan) ([]providerclass.File, error) {
	id := provider.Identity{Namespace: plan.Class.Namespace, ServiceAccount: o.serviceAccount, PodName: "render"}
	var tokens provider.TokenSource
	if o.serviceAccount != "" {
		if o.kubeconfig == "" {
			return nil, errors.New("--service-account needs a kubeconfig (--kubeconfig or KUBECONFIG) to request its token")
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", o.kubeconfig, err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client from %s: %w", o.kubeconfig, err)
		}
		tokens = sync.NewTokenRequester(client)
	}
	reg := provider.NewRegistry()
	switch plan.Provider {
	case "aws":
		// Your own credentials unless a ServiceAccount is named: render runs on a
		// workstation or in CI, never as a node's driver.
		awsFlags.allowAmbient = o.serviceAccount == ""
		if o.kubeconfig == "" {
			// Without a kubeconfig, client-go warns about the in-cluster configuration
			// while the role resolver is built; for render that is noise, and the
			// resolver says why on use if a class needs IRSA.
			klog.SetLogger(logr.Discard())
		}
		err := awsFlags.register(reg)
		klog.ClearLogger()
		if err != nil {
			return nil, err
		}
	case "vault":
		// A ServiceAccount login when one is named, as a pod would; otherwise your own
		// VAULT_TOKEN. The token is read from the environment only, never from a flag,
		// so it stays out of shell history and process listings.
		callerToken := ""
		if o.serviceAccount == "" {
			callerToken = os.Getenv("VAULT_TOKEN")
			if callerToken == "" {
				return nil, fmt.Errorf("SecretProviderClass %s: provider vault needs VAULT_TOKEN, or --service-account (with a kubeconfig) for a Kubernetes login", plan.Class)
			}
		}
		b, err := vault.New(vault.Options{DefaultAddress: o.vaultAddress, Keys: ephemeralKey{}, Tokens: tokens, CallerToken: callerToken, CoalesceWindow: -1})
		if err != nil {
			return nil, err
		}
		reg.Register("vault", b)
	default:
		return nil, fmt.Errorf("SecretProviderClass %s: provider %q: render fetches only with the built-in aws and vault backends: %w", plan.Class, plan.Provider, provider.ErrUnknownProvider)
	}
	if audience := plan.TokenAudience(); tokens != nil && audience != "" {
		tok, err := tokens.Token(ctx, id, audience)
		if err != nil {
			return nil, err
		}
		id.Tokens = map[string]provider.Token{audience: tok}
	}
	backend, err := reg.Get(plan.Provider)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: %w", plan.Class, err)
	}
	contents, err := backend.Fetch(ctx, plan, id)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: fetch from provider %q: %w", plan.Class, plan.Provider, err)
	}
	if len(contents) != len(plan.Objects) {
		return nil, fmt.Errorf("SecretProviderClass %s: provider %q returned %d objects for %d planned", plan.Class, plan.Provider, len(contents), len(plan.Objects))
	}
	files, err := plan.Render(contents)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: %w", plan.Class, err)
	}
	return files, nil
}

// ephemeralKey keys the Vault backend's object versions for one render: versions only
// matter across refreshes, and a render has none.
type ephemeralKey struct{}

func (ephemeralKey) Key(context.Context) ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("random key for object versions: %w", err)
	}
	return k, nil
}

var _ vault.KeySource = ephemeralKey{}

// printPlan writes the plan as tab-separated lines: what would be written, with which
// mode, from where, and which Secrets a mount would sync. It holds no values.
func printPlan(w io.Writer, p *providerclass.Plan) {
	fmt.Fprintf(w, "SecretProviderClass %s, provider %s (%s dialect)\n", p.Class, p.Provider, p.Dialect)
	fmt.Fprintln(w, "FILE\tMODE\tSOURCE")
	for _, o := range p.Objects {
		src := objectSource(p, o)
		if o.File != "" {
			fmt.Fprintf(w, "%s\t%04o\t%s\n", o.File, o.Mode.Perm(), src)
		}
		for _, e := range o.Extractions {
			fmt.Fprintf(w, "%s\t%04o\t%s jmesPath %s\n", e.File, e.Mode.Perm(), src, e.Path)
		}
	}
	for _, so := range p.SecretObjects {
		keys := make([]string, 0, len(so.Data))
		for _, d := range so.Data {
			keys = append(keys, d.Key+"<-"+d.ObjectName)
		}
		sort.Strings(keys)
		typ := so.Type
		if typ == "" {
			typ = "Opaque"
		}
		fmt.Fprintf(w, "secret %s (%s): %s\n", so.SecretName, typ, strings.Join(keys, " "))
	}
}

func objectSource(p *providerclass.Plan, o providerclass.Object) string {
	switch p.Dialect {
	case providerclass.DialectAWS:
		s := o.Type + " " + o.Name
		if o.Version != "" {
			s += " version " + o.Version
		}
		if o.VersionLabel != "" {
			s += " label " + o.VersionLabel
		}
		return s
	case providerclass.DialectVault:
		s := "vault " + o.SecretPath
		if o.SecretKey != "" {
			s += " key " + o.SecretKey
		}
		if o.Method != "" && o.Method != "GET" {
			s += " " + o.Method
		}
		return s
	default:
		return p.Provider + " " + o.Name
	}
}
