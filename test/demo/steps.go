package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

const (
	namespace      = "cnpg-system"
	serviceAccount = "cnpg-sa"
	awsClass       = "postgres-aws-secrets"
	vaultClass     = "postgres-vault-secrets"
	vaultDNSName   = "vault.vault-system:8200"
	// The guide's example values; the demo rotates the password later.
	guideUser     = "postgres"
	guidePassword = "your-secure-password"
)

// demoRun is one run of the demo: the components, processes and volume it made.
type demoRun struct {
	r   *runner
	o   options
	out io.Writer
	ctx context.Context

	step int
	mu   sync.Mutex
	done bool

	repo, fixtures string
	api            *harness.APIServer
	moto           *harness.Moto
	vault          *harness.Vault
	pg             *harness.Postgres
	pgAdmin        *pgx.Conn
	dns            *clusterDNS
	sm             *secretsmanager.Client
	procs          []*proc
	csi            *csiclient.Client
	volume         csiclient.Volume
	env            []string // for the secretmount processes
}

func (d *demoRun) finished() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

func (d *demoRun) finish() {
	d.mu.Lock()
	d.done = true
	d.mu.Unlock()
}

// stepf runs one step between a progress line and its time.
func (d *demoRun) stepf(f func() string, format string, args ...any) {
	if d.ctx.Err() != nil {
		d.r.Fatalf("interrupted")
	}
	d.step++
	fmt.Fprintf(d.out, "[%2d] %s\n", d.step, fmt.Sprintf(format, args...))
	start := time.Now()
	detail := f()
	for _, p := range d.procs {
		if err := p.exited(); err != nil {
			d.r.Fatalf("%v", err)
		}
	}
	fmt.Fprintf(d.out, "     ok in %s", time.Since(start).Round(10*time.Millisecond))
	if detail != "" {
		fmt.Fprintf(d.out, ": %s", detail)
	}
	fmt.Fprintln(d.out)
}

func (d *demoRun) run() {
	d.repo = harness.RepoRoot(d.r)
	d.fixtures = harness.FixturesDir(d.r)
	if os.Geteuid() != 0 {
		d.r.Fatalf("the driver mounts a tmpfs for the volume, as on a node: run the demo as root (euid is %d)", os.Geteuid())
	}
	if _, err := os.Stat(d.o.secretmount); err != nil {
		d.r.Fatalf("secretmount binary: %v (run `make build` or hack/demo.sh)", err)
	}
	d.startComponents()
	d.prepareCluster()
	d.prepareBackends()
	d.startSecretmount()
	d.applyClasses()
	d.publish()
	d.showSecrets()
	d.render()
	d.login(guidePassword, "the guide's")
	newPassword := d.rotate()
	d.login(newPassword, "the rotated")
	d.unpublish()
}

func (d *demoRun) startComponents() {
	d.stepf(func() string {
		d.api = harness.StartAPIServer(d.r)
		return d.api.Host
	}, "starting etcd and kube-apiserver")
	d.stepf(func() string {
		d.moto = harness.StartMoto(d.r)
		return d.moto.Endpoint
	}, "starting moto (AWS Secrets Manager and STS)")
	d.stepf(func() string {
		d.vault = harness.StartVault(d.r)
		return d.vault.Addr
	}, "starting OpenBao (the Vault API)")
	d.stepf(func() string {
		d.pg = harness.StartPostgres(d.r)
		d.pgAdmin = d.pg.Connect(d.r, d.pg.DSN)
		return fmt.Sprintf("127.0.0.1:%d", d.pg.Port)
	}, "starting PostgreSQL")
}

func (d *demoRun) prepareCluster() {
	d.stepf(func() string {
		d.api.ApplyCRDs(d.r, filepath.Join(d.repo, "charts", "secretmount", "crds"))
		d.api.CreateNamespace(d.r, namespace)
		d.api.CreateServiceAccount(d.r, namespace, serviceAccount, map[string]string{
			"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/cnpg-secrets",
		})
		return "CRDs SecretProviderClass and SecretSync; namespace " + namespace + "; ServiceAccount " + serviceAccount + " with an IRSA role"
	}, "preparing the cluster")
}

func (d *demoRun) prepareBackends() {
	d.stepf(func() string {
		cfg := d.moto.AWSConfig()
		d.sm = secretsmanager.NewFromConfig(cfg)
		d.putAWS("prod/cnpg/postgres-credentials", map[string]string{"username": guideUser, "password": guidePassword}, true)
		d.putAWS("prod/cnpg/s3-credentials", map[string]string{"accessKeyId": "your-access-key", "secretAccessKey": "your-secret-key"}, true)
		return "prod/cnpg/postgres-credentials, prod/cnpg/s3-credentials"
	}, "writing the guide's secrets to AWS Secrets Manager (moto)")
	d.stepf(func() string {
		d.vault.ConfigureKubernetesAuth(d.r, d.api, "kubernetes")
		script := filepath.Join(d.fixtures, "cnpg-vault-setup.sh")
		if _, err := run([]string{"VAULT_ADDR=" + d.vault.Addr, "VAULT_TOKEN=" + d.vault.RootToken}, "bash", script); err != nil {
			d.r.Fatalf("%v", err)
		}
		return "KV v2 at cnpg, policy cnpg-policy, kubernetes auth role cnpg for " + namespace + "/" + serviceAccount
	}, "setting up Vault with the guide's cnpg-vault-setup.sh")
	d.stepf(func() string {
		dns, err := startClusterDNS(map[string]string{vaultDNSName: d.vault.Addr})
		if err != nil {
			d.r.Fatalf("%v", err)
		}
		d.dns = dns
		d.r.Cleanup(func() { _ = dns.Close() })
		d.env = []string{"HTTP_PROXY=" + dns.URL, "http_proxy=" + dns.URL, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"}
		return vaultDNSName + " -> " + d.vault.Addr + " (HTTP proxy " + dns.URL + ")"
	}, "answering for the Vault class's cluster DNS name")
}

func (d *demoRun) putAWS(name string, value map[string]string, create bool) {
	b, err := json.Marshal(value)
	if err != nil {
		d.r.Fatalf("encode %s: %v", name, err)
	}
	// The document, not each field: the scan looks for its longer fields on their own
	// and leaves the user name, which the demo rightly shows.
	harness.RecordSecretValue(d.r, string(b))
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	if create {
		_, err = d.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: sdkaws.String(name), SecretString: sdkaws.String(string(b))})
	} else {
		_, err = d.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: sdkaws.String(name), SecretString: sdkaws.String(string(b))})
	}
	if err != nil {
		d.r.Fatalf("write AWS secret %s: %v", name, err)
	}
}

func (d *demoRun) startSecretmount() {
	awsFlags := []string{"--aws-endpoint", d.moto.Endpoint, "--aws-region", harness.MotoRegion}
	socket := filepath.Join(d.o.workDir, "csi.sock")
	d.stepf(func() string {
		args := append([]string{"driver",
			"--endpoint", "unix://" + socket,
			"--node-id", "demo-node",
			"--kubeconfig", d.api.Kubeconfig,
			"--state-dir", filepath.Join(d.o.workDir, "driver-state"),
			"--enable-secret-rotation",
			"--rotation-poll-interval", d.o.interval.String(),
			"--metrics-addr", "0",
			"--vault-version-key-secret", namespace + "/secretmount-vault-version-key",
		}, awsFlags...)
		p := d.startProc("driver", args...)
		c, err := csiclient.Dial("unix://" + socket)
		if err != nil {
			d.r.Fatalf("%v", err)
		}
		d.csi = c
		d.r.Cleanup(func() { _ = c.Close() })
		ctx, cancel := context.WithTimeout(d.ctx, 60*time.Second)
		defer cancel()
		if err := c.WaitReady(ctx); err != nil {
			d.r.Fatalf("%v\n%s", err, p.tail(20))
		}
		return fmt.Sprintf("pid %d, CSI socket %s, rotation every %s", p.cmd.Process.Pid, socket, d.o.interval)
	}, "starting `secretmount driver`")
	d.stepf(func() string {
		args := append([]string{"sync",
			"--kubeconfig", d.api.Kubeconfig,
			"--rotation-poll-interval", d.o.interval.String(),
			"--metrics-addr", "0",
			"--health-addr", "0",
			"--vault-version-key-secret", namespace + "/secretmount-vault-version-key",
		}, awsFlags...)
		p := d.startProc("sync", args...)
		return fmt.Sprintf("pid %d, polling every %s", p.cmd.Process.Pid, d.o.interval)
	}, "starting `secretmount sync`")
}

func (d *demoRun) startProc(name string, args ...string) *proc {
	p, err := startProc(d.o.workDir, name, d.env, d.o.secretmount, args...)
	if err != nil {
		d.r.Fatalf("%v", err)
	}
	d.procs = append(d.procs, p)
	d.r.Cleanup(func() {
		if err := p.stop(); err != nil {
			d.r.Errorf("%v", err)
		}
		harness.RecordLeakFile(d.r, harness.LeakLogs, p.log)
	})
	return p
}

func (d *demoRun) applyClasses() {
	d.stepf(func() string {
		d.api.ApplyYAML(d.r,
			filepath.Join(d.fixtures, "cnpg-aws-secretproviderclass.yaml"),
			filepath.Join(d.fixtures, "cnpg-vault-secretproviderclass.yaml"))
		return awsClass + " (aws), " + vaultClass + " (vault), as they are"
	}, "applying the CloudNativePG guide's SecretProviderClass and its Vault twin")
	d.stepf(func() string {
		d.api.ApplyManifest(d.r, secretSyncs)
		return "vault-postgres-credentials (label cnpg.io/reload), vault-s3-credentials"
	}, "applying SecretSyncs for the Vault class (pod-less sync)")
}

// secretSyncs ask the sync controller for the Vault class's Secrets without any pod:
// what CloudNativePG needs, since its operator reads Secrets rather than mounts.
const secretSyncs = `apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata: {name: vault-postgres-credentials, namespace: cnpg-system}
spec:
  secretProviderClassName: postgres-vault-secrets
  serviceAccountName: cnpg-sa
  secretObject:
    type: kubernetes.io/basic-auth
    labels: {cnpg.io/reload: "true"}
    data:
      - {sourcePath: db-username, targetKey: username}
      - {sourcePath: db-password, targetKey: password}
---
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata: {name: vault-s3-credentials, namespace: cnpg-system}
spec:
  secretProviderClassName: postgres-vault-secrets
  serviceAccountName: cnpg-sa
  secretObject:
    labels: {cnpg.io/reload: "true"}
    data:
      - {sourcePath: s3-access-key, targetKey: ACCESS_KEY_ID}
      - {sourcePath: s3-secret-key, targetKey: ACCESS_SECRET_KEY}
`

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
