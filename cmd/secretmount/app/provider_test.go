package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/plugin"
	"github.com/secretmount/secretmount/providerclass"
)

type nopBackend struct{}

func (nopBackend) Fetch(context.Context, *providerclass.Plan, provider.Identity) ([]providerclass.ObjectContent, error) {
	return nil, nil
}

func TestExternalProviderRegistry(t *testing.T) {
	builtin := provider.NewRegistry()
	builtin.Register("aws", nopBackend{})
	builtin.Register("vault", nopBackend{})

	o := &externalProviderOptions{dirs: []string{t.TempDir()}, disabled: []string{"vault"}}
	reg, closeClients, err := o.registry(builtin, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeClients() })
	if p, _ := reg.Get("aws"); p != (nopBackend{}) {
		t.Errorf("aws is not the built-in backend: %T", p)
	}
	for _, name := range []string{"vault", "azure"} {
		p, err := reg.Get(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := p.(*plugin.Client); !ok {
			t.Errorf("%s is %T, want the external provider client", name, p)
		}
	}
	if _, err := reg.Get("../x"); !errors.Is(err, provider.ErrUnknownProvider) {
		t.Errorf("bad name: %v", err)
	}

	bad := &externalProviderOptions{disabled: []string{"a/b"}}
	if _, _, err := bad.registry(builtin, time.Second); err == nil || !strings.Contains(err.Error(), "a/b") {
		t.Errorf("bad disabled name accepted: %v", err)
	}
}

func TestProviderCommandNeedsABackend(t *testing.T) {
	cmd := NewCommand()
	cmd.SetArgs([]string{"provider", "--provider-volume", t.TempDir(), "--provider-name", "secretmount", "--backend", "nope"})
	err := cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), `no built-in backend "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestProviderCommandServesUntilCancelled(t *testing.T) {
	saved := providerBackends
	t.Cleanup(func() { providerBackends = saved })
	providerBackends = append(providerBackends[:len(providerBackends):len(providerBackends)], func(r *provider.Registry) error {
		r.Register("aws", nopBackend{})
		return nil
	})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := NewCommand()
	cmd.SetArgs([]string{"provider", "--provider-volume", dir, "--provider-name", "aws"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	clients := plugin.NewClients(plugin.ClientOptions{Dirs: []string{dir}, Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = clients.Close() })
	p, _ := clients.Lookup("aws")
	var version string
	var err error
	for range 100 { // bounded: the socket appears once the command listens
		if version, err = p.(*plugin.Client).Version(ctx); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || version != Version() {
		t.Fatalf("Version = %q, %v; want %q", version, err, Version())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("provider command: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "aws.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
}
