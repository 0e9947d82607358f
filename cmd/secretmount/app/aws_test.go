package app

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/secretmount/secretmount/provider"
)

func TestAWSFlagsOnFetchingCommands(t *testing.T) {
	root := NewCommand()
	for _, name := range []string{"driver", "sync", "provider"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, flag := range []string{"aws-region", "aws-endpoint", "aws-pod-identity-agent-endpoint", "aws-allow-ambient-credentials", "aws-disable-batch-get"} {
			if cmd.Flags().Lookup(flag) == nil {
				t.Errorf("%s has no --%s", name, flag)
			}
		}
		if f := cmd.Flags().Lookup("aws-allow-ambient-credentials"); f != nil && f.DefValue != "false" {
			t.Errorf("%s: ambient credentials are on by default", name)
		}
	}
}

func TestAWSRegistration(t *testing.T) {
	root := NewCommand()
	cmd, _, err := root.Find([]string{"provider"})
	if err != nil {
		t.Fatal(err)
	}
	// A kubeconfig that does not exist: the backend registers, and IRSA lookups fail
	// with the reason rather than the command failing to start.
	if err := cmd.Flags().Set("kubeconfig", filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	reg := provider.NewRegistry()
	if err := awsFlags.register(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get("aws"); err != nil {
		t.Errorf("aws is not registered: %v", err)
	}
	if _, err := awsFlags.roles().RoleARN(context.Background(), "ns", "sa"); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("role lookup without a kubeconfig: err = %v, want ErrUnavailable", err)
	}
}
