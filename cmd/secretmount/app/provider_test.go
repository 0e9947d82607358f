package app

import (
	"context"
	"errors"
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
