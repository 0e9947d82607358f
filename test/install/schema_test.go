package install

import (
	"strings"
	"testing"
)

// TestSchemaRejectsWrongTypes proves values.schema.json stops a mistyped value before
// anything is rendered, and names the value in the error.
func TestSchemaRejectsWrongTypes(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		field  string
	}{
		{"rotation as bool", map[string]any{"enableSecretRotation": "yes"}, "enableSecretRotation"},
		{"poll interval not a duration", map[string]any{"rotationPollInterval": "two minutes"}, "rotationPollInterval"},
		{"poll interval as number", map[string]any{"rotationPollInterval": 120}, "rotationPollInterval"},
		{"verbosity as string", map[string]any{"logVerbosity": "debug"}, "logVerbosity"},
		{"json logs as string", map[string]any{"logFormatJSON": "true"}, "logFormatJSON"},
		{"sync secret as bool", map[string]any{"syncSecret": map[string]any{"enabled": "true"}}, "enabled"},
		{"relative kubelet dir", map[string]any{"linux": map[string]any{"kubeletRootDir": "var/lib/kubelet"}}, "kubeletRootDir"},
		{"tolerations as map", map[string]any{"linux": map[string]any{"tolerations": map[string]any{"operator": "Exists"}}}, "tolerations"},
		{"token request without audience", map[string]any{"tokenRequests": []any{map[string]any{"expirationSeconds": 3600}}}, "tokenRequests"},
		{"token request as string", map[string]any{"tokenRequests": []any{"vault"}}, "tokenRequests"},
		{"bad fsGroupPolicy", map[string]any{"csiDriver": map[string]any{"fsGroupPolicy": "Always"}}, "fsGroupPolicy"},
		{"driver name with capitals", map[string]any{"driverName": "Secrets.Example"}, "driverName"},
		{"aws region as number", map[string]any{"providers": map[string]any{"aws": map[string]any{"region": 1}}}, "region"},
		{"unknown vault setting", map[string]any{"providers": map[string]any{"vault": map[string]any{"adress": "https://vault"}}}, "adress"},
		{"renew fraction above 1", map[string]any{"providers": map[string]any{"vault": map[string]any{"renewFraction": 1.5}}}, "renewFraction"},
		{"replicas as string", map[string]any{"syncController": map[string]any{"replicas": "2"}}, "replicas"},
		{"metrics address without port", map[string]any{"linux": map[string]any{"metricsAddr": "localhost"}}, "metricsAddr"},
		{"pull policy", map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, "pullPolicy"},
		{"service monitor as string", map[string]any{"serviceMonitor": "on"}, "serviceMonitor"},
		{"env entry without name", map[string]any{"linux": map[string]any{"driver": map[string]any{"env": []any{map[string]any{"value": "x"}}}}}, "name"},
		{"env as map", map[string]any{"syncController": map[string]any{"env": map[string]any{"HTTPS_PROXY": "http://proxy"}}}, "env"},
		{"env entry misspelt", map[string]any{"syncController": map[string]any{"env": []any{map[string]any{"name": "A", "valu": "x"}}}}, "valu"},
	}
	dir := chartDir(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(dir, Options{Values: tc.values})
			if err == nil {
				t.Fatalf("values %v were accepted", tc.values)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error does not name the schema and %s: %v", tc.field, err)
			}
		})
	}
}
