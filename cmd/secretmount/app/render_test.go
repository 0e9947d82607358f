package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/secretmount/secretmount/providerclass"
)

// fixturesDir is ../shared/fixtures beside the checkout (three levels above this package).
func fixturesDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(wd, "..", "..", "..", "..", "shared", "fixtures")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("fixtures folder %s is missing: the tests expect ../shared/fixtures beside the checkout", dir)
	}
	return dir
}

func runRender(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"render"}, args...))
	err := root.Execute()
	return out.String(), err
}

// TestRenderDryRun prints the guide's classes' plans with every network path closed: a
// proxy that does not exist, no AWS credentials, no kubeconfig, a Vault address nobody
// listens on. A fetch attempt would fail the command.
func TestRenderDryRun(t *testing.T) {
	dir := fixturesDir(t)
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(v, "http://127.0.0.1:1")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("KUBECONFIG", "")
	tests := []struct {
		file string
		want []string
	}{
		{"cnpg-aws-secretproviderclass.yaml", []string{
			"SecretProviderClass cnpg-system/postgres-aws-secrets, provider aws (aws dialect)",
			"db-username\t0644\tsecretsmanager prod/cnpg/postgres-credentials jmesPath username",
			"s3-secret-key\t0644\tsecretsmanager prod/cnpg/s3-credentials jmesPath secretAccessKey",
			"secret postgres-credentials (Opaque): password<-db-password username<-db-username",
		}},
		{"cnpg-vault-secretproviderclass.yaml", []string{
			"SecretProviderClass cnpg-system/postgres-vault-secrets, provider vault (vault dialect)",
			"db-password\t0644\tvault cnpg/data/postgres-credentials key password",
			"secret s3-credentials (Opaque): access_key<-s3-access-key secret_key<-s3-secret-key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, err := runRender(t, "-f", filepath.Join(dir, tt.file), "--dry-run", "--vault-address", "http://127.0.0.1:1")
			if err != nil {
				t.Fatalf("render --dry-run: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestRenderRefusals: bad input ends with an error naming the file, flag or field, and
// writes nothing. Plan errors are the driver's own (providerclass.NewPlan).
func TestRenderRefusals(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badField := write("bad-field.yaml", `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: c, namespace: n}
spec:
  provider: aws
  parameters:
    objects: |
      - objectName: a
        objectType: secretsmanager
        objectAlias: ../escape
`)
	notSPC := write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
	typo := write("typo.yaml", "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: c}\nspec: {provder: aws}\n")
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file flag", []string{"--dry-run"}, "-f/--filename is required"},
		{"no out", []string{"-f", badField}, "--out is required"},
		{"missing file", []string{"-f", filepath.Join(dir, "absent.yaml"), "--dry-run"}, "absent.yaml"},
		{"not a class", []string{"-f", notSPC, "--dry-run"}, `kind "ConfigMap"`},
		{"unknown field", []string{"-f", typo, "--dry-run"}, "provder"},
		{"plan error", []string{"-f", badField, "--out", out}, "objectAlias"},
		{"vault without VAULT_TOKEN or a ServiceAccount", []string{"-f", filepath.Join(fixturesDir(t), "cnpg-vault-secretproviderclass.yaml"), "--out", out}, "VAULT_TOKEN"},
		{"bad timeout", []string{"-f", badField, "--out", out, "--timeout", "0s"}, "--timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := runRender(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q\n%s", err, tt.want, text)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s was created by a refused render", out)
			}
		})
	}
	// The plan error is the driver's, word for word.
	spc, err := readClass(badField)
	if err != nil {
		t.Fatal(err)
	}
	_, planErr := providerclass.NewPlan(spc, providerclass.Mount{Namespace: "n"})
	_, renderErr := runRender(t, "-f", badField, "--out", out)
	if planErr == nil || renderErr == nil || planErr.Error() != renderErr.Error() {
		t.Errorf("render error %v, driver plan error %v: want the same", renderErr, planErr)
	}
}

// TestBackendsReadTheRunningCommandsKubeconfig: the backends' shared options follow the
// command that runs, not the last one built.
func TestBackendsReadTheRunningCommandsKubeconfig(t *testing.T) {
	root := NewCommand()
	for _, name := range []string{"driver", "render"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if cmd.PreRunE == nil {
			t.Fatalf("%s has no PreRunE", name)
		}
		if err := cmd.PreRunE(cmd, nil); err != nil {
			t.Fatal(err)
		}
		if awsFlags.cmd != cmd {
			t.Errorf("after %s starts, the aws options read %s's flags", name, cmdName(awsFlags.cmd))
		}
		if name == "driver" && vaultFlags.cmd != cmd {
			t.Errorf("after %s starts, the vault options read %s's flags", name, cmdName(vaultFlags.cmd))
		}
	}
}

func cmdName(c *cobra.Command) string {
	if c == nil {
		return "no command"
	}
	return c.Name()
}
