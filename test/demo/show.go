package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretmount/secretmount/test/csiclient"
)

// The AWS mount's files: the two objects themselves and their jmesPath aliases.
var awsFiles = []string{"db-password", "db-username", "prod_cnpg_postgres-credentials", "prod_cnpg_s3-credentials", "s3-access-key", "s3-secret-key"}

func (d *demoRun) publish() {
	d.stepf(func() string {
		uid := "demo-" + randomSuffix()
		target := filepath.Join(d.o.workDir, "pods", uid, "volumes", "kubernetes.io~csi", "secrets-store-inline", "mount")
		ctx, cancel := context.WithTimeout(d.ctx, 60*time.Second)
		defer cancel()
		d.volume = csiclient.Volume{
			TargetPath: target,
			Pod:        csiclient.Pod{Namespace: namespace, Name: "cluster-example-1", UID: uid, ServiceAccount: serviceAccount},
			Class:      awsClass,
			Tokens: map[string]csiclient.Token{"sts.amazonaws.com": {
				Token:     d.api.Token(d.r, namespace, serviceAccount, time.Hour, "sts.amazonaws.com"),
				ExpiresAt: time.Now().Add(time.Hour),
			}},
		}
		if err := d.csi.Publish(ctx, d.volume); err != nil {
			d.r.Fatalf("NodePublishVolume: %v\n%s", err, d.procs[0].tail(20))
		}
		d.r.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = d.csi.Unpublish(ctx, d.volume)
		})
		d.showTree(target)
		for _, name := range awsFiles {
			if _, err := os.Stat(filepath.Join(target, name)); err != nil {
				d.r.Fatalf("mounted file %s: %v", name, err)
			}
		}
		d.expectFile("db-password", guidePassword)
		d.expectFile("s3-secret-key", "your-secret-key")
		return fmt.Sprintf("%d files on a tmpfs at %s", len(awsFiles), target)
	}, "publishing a volume of %s as kubelet would (NodePublishVolume with a ServiceAccount token)", awsClass)
}

func (d *demoRun) expectFile(name, want string) {
	got, err := os.ReadFile(filepath.Join(d.volume.TargetPath, name))
	if err != nil {
		d.r.Fatalf("read mounted %s: %v", name, err)
	}
	if string(got) != want {
		d.r.Fatalf("mounted %s does not hold the value written to the backend", name)
	}
}

// showTree prints the mount as a pod sees it, values masked.
func (d *demoRun) showTree(target string) {
	fmt.Fprintf(d.out, "     %s\n", target)
	entries, err := os.ReadDir(target)
	if err != nil {
		d.r.Fatalf("list %s: %v", target, err)
	}
	for _, e := range entries {
		p := filepath.Join(target, e.Name())
		if link, err := os.Readlink(p); err == nil {
			if e.Name() == "..data" {
				fmt.Fprintf(d.out, "       %-32s -> %s\n", e.Name(), link)
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				d.r.Fatalf("stat %s: %v", p, err)
			}
			fmt.Fprintf(d.out, "       %-32s -> %-38s %s %3d bytes  %s\n", e.Name(), link, fi.Mode().Perm(), fi.Size(), strings.Repeat("*", 8))
			continue
		}
		if e.IsDir() {
			fmt.Fprintf(d.out, "       %s/\n", e.Name())
		}
	}
	var st fsStat
	if err := st.of(target); err == nil {
		fmt.Fprintf(d.out, "       (filesystem: %s)\n", st.kind)
	}
}

type fsStat struct{ kind string }

// of reads the filesystem type from /proc/self/mountinfo, to show the volume is a tmpfs.
func (s *fsStat) of(target string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 10 || fields[4] != target {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				s.kind = fields[i+1]
				return nil
			}
		}
	}
	return fs.ErrNotExist
}

// wantSecrets are the Secrets the demo expects, and one key of each whose value it checks.
var wantSecrets = []struct {
	name, source, key, value string
}{
	{"postgres-credentials", "the mount of " + awsClass, "password", guidePassword},
	{"s3-credentials", "the mount of " + awsClass, "secret-key", "your-secret-key"},
	{"vault-postgres-credentials", "SecretSync of " + vaultClass, "password", guidePassword},
	{"vault-s3-credentials", "SecretSync of " + vaultClass, "ACCESS_SECRET_KEY", "your-secret-key"},
}

func (d *demoRun) showSecrets() {
	d.stepf(func() string {
		for _, w := range wantSecrets {
			s := d.waitSecret(w.name, func(s *corev1.Secret) bool { return string(s.Data[w.key]) == w.value }, 60*time.Second)
			keys := make([]string, 0, len(s.Data))
			for k, v := range s.Data {
				keys = append(keys, fmt.Sprintf("%s (%d bytes)", k, len(v)))
			}
			sort.Strings(keys)
			labels := ""
			if s.Labels["cnpg.io/reload"] == "true" {
				labels = ", label cnpg.io/reload=true"
			}
			fmt.Fprintf(d.out, "       secret %s/%-28s %-26s from %s%s: %s\n", namespace, s.Name, "("+string(s.Type)+")", w.source, labels, strings.Join(keys, ", "))
		}
		return fmt.Sprintf("%d Secrets synced", len(wantSecrets))
	}, "waiting for the synced Secrets (keys and sizes; values never printed)")
}

// waitSecret polls a Secret until ok, or fails the step after timeout.
func (d *demoRun) waitSecret(name string, ok func(*corev1.Secret) bool, timeout time.Duration) *corev1.Secret {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		s, err := d.api.Client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		cancel()
		switch {
		case err == nil && ok(s):
			return s
		case err == nil:
			last = fmt.Errorf("Secret %s does not hold the expected value yet", name)
		case apierrors.IsNotFound(err):
			last = fmt.Errorf("Secret %s does not exist yet", name)
		default:
			last = err
		}
		if time.Now().After(deadline) || d.ctx.Err() != nil {
			d.r.Fatalf("%v (waited %s)", last, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// render runs `secretmount render` for both classes with the caller's own credentials
// (AWS: the environment's keys; Vault: a ServiceAccount login) and compares the result
// with what the driver mounted.
func (d *demoRun) render() {
	d.stepf(func() string {
		out := filepath.Join(d.o.workDir, "render-aws")
		env := []string{"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "KUBECONFIG="}
		if _, err := run(env, d.o.secretmount, "render", "-f", filepath.Join(d.fixtures, "cnpg-aws-secretproviderclass.yaml"),
			"--out", out, "--aws-endpoint", d.moto.Endpoint, "--aws-region", "us-east-1"); err != nil {
			d.r.Fatalf("%v", err)
		}
		for _, name := range awsFiles {
			a, errA := os.ReadFile(filepath.Join(out, name))
			b, errB := os.ReadFile(filepath.Join(d.volume.TargetPath, name))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				d.r.Fatalf("rendered %s differs from the mounted one (%v, %v)", name, errA, errB)
			}
		}
		vout := filepath.Join(d.o.workDir, "render-vault")
		venv := append([]string{"KUBECONFIG=" + d.api.Kubeconfig}, d.env...)
		if _, err := run(venv, d.o.secretmount, "render", "-f", filepath.Join(d.fixtures, "cnpg-vault-secretproviderclass.yaml"),
			"--out", vout, "--service-account", serviceAccount); err != nil {
			d.r.Fatalf("%v", err)
		}
		if b, err := os.ReadFile(filepath.Join(vout, "db-password")); err != nil || string(b) != guidePassword {
			d.r.Fatalf("rendered Vault db-password does not hold the value in Vault (%v)", err)
		}
		tout := filepath.Join(d.o.workDir, "render-vault-token")
		tenv := append([]string{"KUBECONFIG=", "VAULT_TOKEN=" + d.vault.RootToken}, d.env...)
		if _, err := run(tenv, d.o.secretmount, "render", "-f", filepath.Join(d.fixtures, "cnpg-vault-secretproviderclass.yaml"), "--out", tout); err != nil {
			d.r.Fatalf("%v", err)
		}
		for _, name := range []string{"db-username", "db-password", "s3-access-key", "s3-secret-key"} {
			a, errA := os.ReadFile(filepath.Join(vout, name))
			b, errB := os.ReadFile(filepath.Join(tout, name))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				d.r.Fatalf("Vault render with VAULT_TOKEN differs from the ServiceAccount login's in %s (%v, %v)", name, errA, errB)
			}
		}
		return "aws: the same 6 files as the mount, byte for byte (own AWS keys); vault: 4 files, the same with a login as " + serviceAccount + " and with VAULT_TOKEN"
	}, "`secretmount render` of both classes with the caller's own credentials")
}

// login connects to PostgreSQL with the credentials in the synced Secret, after the
// role has been given that password (as the database's administrator would).
func (d *demoRun) login(password, which string) {
	d.stepf(func() string {
		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		defer cancel()
		if _, err := d.pgAdmin.Exec(ctx, "ALTER ROLE "+pgx.Identifier{guideUser}.Sanitize()+" PASSWORD "+quote(password)); err != nil {
			d.r.Fatalf("set the password of role %s: %v", guideUser, err)
		}
		s := d.waitSecret("postgres-credentials", func(s *corev1.Secret) bool { return string(s.Data["password"]) == password }, 30*time.Second)
		user, pass := string(s.Data["username"]), string(s.Data["password"])
		conn, err := pgx.Connect(ctx, d.pg.DSNFor(user, pass, ""))
		if err != nil {
			d.r.Fatalf("log in with Secret postgres-credentials: %v", err)
		}
		defer conn.Close(context.Background())
		var current string
		var super bool
		var version string
		if err := conn.QueryRow(ctx, "SELECT current_user, rolsuper, current_setting('server_version') FROM pg_roles WHERE rolname = current_user").Scan(&current, &super, &version); err != nil {
			d.r.Fatalf("query as %s: %v", user, err)
		}
		if !super {
			d.r.Fatalf("role %s is not a superuser", current)
		}
		return fmt.Sprintf("logged into PostgreSQL %s as %s (superuser) with Secret postgres-credentials", version, current)
	}, "logging into PostgreSQL with %s password from the synced Secret", which)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// rotate writes a new password to both backends and times how long the mounted file and
// the three places it is synced to take to follow.
func (d *demoRun) rotate() string {
	newPassword := "rotated-" + randomSuffix()
	d.stepf(func() string {
		start := time.Now()
		d.putAWS("prod/cnpg/postgres-credentials", map[string]string{"username": guideUser, "password": newPassword}, false)
		if _, err := d.vault.Client.Logical().WriteWithContext(d.ctx, "cnpg/data/postgres-credentials", map[string]any{
			"data": map[string]any{"username": guideUser, "password": newPassword}}); err != nil {
			d.r.Fatalf("write Vault secret cnpg/data/postgres-credentials: %v", err)
		}
		bound := 3*d.o.interval + 15*time.Second
		fileAt := d.waitFile("db-password", newPassword, bound)
		fmt.Fprintf(d.out, "       mounted file db-password changed after %s\n", fileAt.Sub(start).Round(10*time.Millisecond))
		for _, name := range []string{"postgres-credentials", "vault-postgres-credentials"} {
			d.waitSecret(name, func(s *corev1.Secret) bool { return string(s.Data["password"]) == newPassword }, bound)
			fmt.Fprintf(d.out, "       Secret %s changed after %s\n", name, time.Since(start).Round(10*time.Millisecond))
		}
		elapsed := time.Since(start)
		verdict := "within one rotation interval"
		if elapsed > d.o.interval {
			verdict = "beyond one rotation interval (a slow machine?)"
		}
		return fmt.Sprintf("all followed in %s, %s (%s)", elapsed.Round(10*time.Millisecond), verdict, d.o.interval)
	}, "rotating the password in AWS and in Vault")
	return newPassword
}

func (d *demoRun) waitFile(name, want string, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(filepath.Join(d.volume.TargetPath, name)); err == nil && string(b) == want {
			return time.Now()
		}
		if time.Now().After(deadline) || d.ctx.Err() != nil {
			d.r.Fatalf("mounted %s did not follow the backend within %s", name, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *demoRun) unpublish() {
	d.stepf(func() string {
		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		defer cancel()
		if err := d.csi.Unpublish(ctx, d.volume); err != nil {
			d.r.Fatalf("NodeUnpublishVolume: %v", err)
		}
		if _, err := os.Stat(d.volume.TargetPath); !os.IsNotExist(err) {
			d.r.Fatalf("%s is still there after NodeUnpublishVolume (%v)", d.volume.TargetPath, err)
		}
		return "tmpfs unmounted and target removed"
	}, "unpublishing the volume as kubelet would when the pod goes")
}

// showLogs prints the end of each secretmount process's log after a failed step.
func (d *demoRun) showLogs() {
	for _, p := range d.procs {
		fmt.Fprintf(d.out, "----- last lines of %s (%s)\n%s\n", p.name, p.log, p.tail(30))
	}
}
