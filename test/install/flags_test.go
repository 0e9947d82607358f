package install

import (
	"strings"
	"testing"

	"github.com/secretmount/secretmount/cmd/secretmount/app"
)

// TestChartFlagsExist starts nothing: it parses the arguments of every secretmount
// container the chart renders with the real command tree, so a flag the chart passes
// but the binary does not define (renamed, removed, misspelt) fails here instead of
// crash-looping on every node.
func TestChartFlagsExist(t *testing.T) {
	cases := map[string]Options{
		"defaults": {},
		"upstream": {Values: upstreamValues(t)},
		"built-in backends off": {Values: map[string]any{"providers": map[string]any{
			"aws":   map[string]any{"enabled": false, "region": "eu-west-1"},
			"vault": map[string]any{"enabled": false, "address": "https://vault.example:8200"},
		}}},
		"everything set": {Values: map[string]any{
			"providers": map[string]any{
				"aws":   map[string]any{"region": "eu-west-1", "endpoint": "https://sm.example", "podIdentityAgentEndpoint": "http://169.254.170.23/v1/credentials", "disableBatchGet": true},
				"vault": map[string]any{"address": "https://vault.example:8200", "versionKeySecretName": "vault-key", "renewFraction": 0.5},
			},
			"syncController":       map[string]any{"watchNamespace": "cnpg-system"},
			"enableSecretRotation": true,
			"logFormatJSON":        true,
		}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			seen := 0
			for _, obj := range render(t, o) {
				if obj.GetKind() != "DaemonSet" && obj.GetKind() != "Deployment" {
					continue
				}
				for cname, c := range containers(t, obj) {
					if !strings.Contains(str(c["image"]), "/secretmount:") {
						continue
					}
					seen++
					a := args(t, c)
					root := app.NewCommand()
					cmd, rest, err := root.Find(a)
					if err != nil || cmd == root {
						t.Errorf("%s/%s: %v is not a secretmount subcommand: %v", obj.GetName(), cname, a, err)
						continue
					}
					if err := cmd.ParseFlags(rest); err != nil {
						t.Errorf("%s/%s: secretmount %s does not accept %v: %v", obj.GetName(), cname, cmd.Name(), rest, err)
						continue
					}
					if extra := cmd.Flags().Args(); len(extra) > 0 {
						t.Errorf("%s/%s: stray arguments %v", obj.GetName(), cname, extra)
					}
				}
			}
			if seen != 2 {
				t.Errorf("%d secretmount containers checked, want the driver and the sync controller", seen)
			}
		})
	}
}
