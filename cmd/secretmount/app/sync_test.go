package app

import (
	"context"
	"strings"
	"testing"
)

// Bad concurrency and client-limit flags are refused before anything connects, naming
// the flag; zero QPS in particular would otherwise mean client-go's silent 5/s.
func TestSyncCommandRefusesBadLimits(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no workers", []string{"--max-concurrent-reconciles=0"}, "--max-concurrent-reconciles must be at least 1"},
		{"negative workers", []string{"--max-concurrent-reconciles=-2"}, "--max-concurrent-reconciles must be at least 1"},
		{"zero qps", []string{"--kube-api-qps=0"}, "--kube-api-qps must be positive"},
		{"qps without burst", []string{"--kube-api-qps=10", "--kube-api-burst=0"}, "--kube-api-burst must be at least 1"},
		{"driver zero qps", []string{"--kube-api-qps=0"}, "--kube-api-qps must be positive"},
		{"driver qps without burst", []string{"--kube-api-qps=10", "--kube-api-burst=0"}, "--kube-api-burst must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := NewCommand()
			// A kubeconfig that does not exist: a flag check that came too late would
			// fail on it instead, with another message.
			args := append([]string{"sync", "--kubeconfig=" + t.TempDir() + "/none", "--metrics-addr=0", "--health-addr=0"}, tt.args...)
			if strings.HasPrefix(tt.name, "driver ") {
				args = append([]string{"driver", "--node-id=n", "--kubeconfig=" + t.TempDir() + "/none", "--metrics-addr=0"}, tt.args...)
			}
			cmd.SetArgs(args)
			cmd.SetOut(&strings.Builder{})
			cmd.SetErr(&strings.Builder{})
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSyncCommandLimitDefaults(t *testing.T) {
	cmd := newSyncCommand()
	for flag, want := range map[string]string{
		"max-concurrent-reconciles": "8",
		"kube-api-qps":              "100",
		"kube-api-burst":            "200",
	} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Fatalf("no --%s flag", flag)
		}
		if f.DefValue != want {
			t.Errorf("--%s defaults to %s, want %s", flag, f.DefValue, want)
		}
	}
}

func TestDriverCommandLimitDefaults(t *testing.T) {
	cmd := newDriverCommand()
	for flag, want := range map[string]string{"kube-api-qps": "50", "kube-api-burst": "100"} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Fatalf("no --%s flag", flag)
		}
		if f.DefValue != want {
			t.Errorf("--%s defaults to %s, want %s", flag, f.DefValue, want)
		}
	}
}
