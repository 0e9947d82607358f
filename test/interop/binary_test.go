//go:build integration

package interop

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/harness"
)

// startSecretmount runs the secretmount binary with args (subcommand first) and stops
// it by PID when the test ends; it returns the PID once socket is there.
func startSecretmount(t *testing.T, bin, socket string, args ...string) int {
	t.Helper()
	p := harness.StartProgram(t, harness.ProgramSpec{
		Name: "secretmount-" + args[0], Path: bin, Args: args, Env: os.Environ(),
		Ready: harness.FileExists(socket), ReadyTimeout: 30 * time.Second,
	})
	return p.PID
}

// processFigures are the open file descriptors and OS threads of a process.
func processFigures(t *testing.T, pid int) (fds, threads int) {
	t.Helper()
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return len(entries), threads
}

// TestSecretmountProviderBinary runs the real `secretmount provider` binary as the
// Vault provider for the upstream driver (the guide's Vault class, real Vault backend),
// compares the mount with our driver's, then drives the binary with 1000 sequential
// and 100 concurrent Mount calls as the upstream driver sends them and checks that its
// open file descriptors do not grow.
func TestSecretmountProviderBinary(t *testing.T) {
	requireRoot(t)
	api := cluster(t)
	v := guideVault(t, api)
	const ns = "cnpg-system"
	spc := harness.FixtureClass(t, "cnpg-vault-secretproviderclass.yaml")
	spc.Spec.Parameters["vaultAddress"] = v.Addr
	storeClass(t, api, ns, spc)
	bin := harness.SecretmountBinary(t)

	var pid int
	var socket string
	serve := func(dir string) {
		socket = filepath.Join(dir, "vault.sock")
		pid = startSecretmount(t, bin, socket, "provider", "--provider-name=vault", "--provider-volume="+dir,
			"--kubeconfig="+api.Kubeconfig, "--vault-version-key-secret="+ns+"/secretmount-vault-versions")
	}
	backend, err := vault.New(vault.Options{Keys: &vault.SecretKeySource{Client: api.Client, Namespace: ns, Name: "secretmount-vault-versions"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("vault", backend)
	files := interopWith(t, ns, "cnpg-sa", spc.Name, serve, reg, "vault")
	if string(files["db-password"].Bytes) != "your-secure-password" {
		t.Errorf("db-password does not hold the value the guide's script wrote")
	}

	// The request the upstream driver sends for this class.
	attrs := map[string]string{}
	for k, val := range spc.Spec.Parameters {
		attrs[k] = val
	}
	for k, val := range (kubeletMount{Class: spc.Name, Namespace: ns, PodName: "load", PodUID: "uid-load", ServiceAccount: "cnpg-sa",
		Tokens: kubeletTokens(t, api, ns, "cnpg-sa", "vault")}).volumeContext() {
		attrs[k] = val
	}
	b, _ := json.Marshal(attrs)
	req := &v1alpha1.MountRequest{Attributes: string(b), Secrets: "null", Permission: "420", TargetPath: "/unused"}
	client := v1alpha1.NewCSIDriverProviderClient(dialUnix(t, socket))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mount := func() error {
		resp, err := client.Mount(ctx, req)
		if err == nil && len(resp.GetFiles()) != 4 {
			t.Errorf("mount returned %d files", len(resp.GetFiles()))
		}
		return err
	}
	if err := mount(); err != nil {
		t.Fatal(err)
	}
	fd0, th0 := processFigures(t, pid)
	start := time.Now()
	for i := range 1000 {
		if err := mount(); err != nil {
			t.Fatalf("sequential mount %d: %v", i, err)
		}
	}
	seq := time.Since(start)
	fd1, th1 := processFigures(t, pid)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	start = time.Now()
	for range 100 {
		wg.Go(func() {
			if err := mount(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	conc := time.Since(start)
	close(errs)
	for err := range errs {
		t.Errorf("concurrent mount: %v", err)
	}
	fd2, th2 := processFigures(t, pid)
	for i := 0; i < 100 && fd2 > fd0; i++ { // bounded: idle connections to Vault close
		time.Sleep(50 * time.Millisecond)
		fd2, th2 = processFigures(t, pid)
	}
	t.Logf("secretmount provider pid %d: open fds %d -> %d after 1000 sequential (%s) -> %d after 100 concurrent (%s); OS threads %d -> %d -> %d",
		pid, fd0, fd1, seq.Round(time.Millisecond), fd2, conc.Round(time.Millisecond), th0, th1, th2)
	if fd1 > fd0 || fd2 > fd0 {
		t.Errorf("open file descriptors grew: %d -> %d -> %d", fd0, fd1, fd2)
	}
}
