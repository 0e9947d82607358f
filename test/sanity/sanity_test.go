package sanity

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/mount-utils"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/test/harness"
)

func TestSanity(t *testing.T) {
	harness.RequireRoot(t)
	dir := t.TempDir()
	nodeSock := filepath.Join(dir, "node.sock")
	coSock := filepath.Join(dir, "co.sock")

	reg := provider.NewRegistry()
	reg.Register("aws", backend{})
	d, err := driver.New(driver.Options{
		Endpoint: "unix://" + nodeSock,
		NodeID:   "sanity-node",
		StateDir: filepath.Join(dir, "state"),
		Classes: classes{spc: &secretsstorev1.SecretProviderClass{
			ObjectMeta: metav1.ObjectMeta{Namespace: "sanity", Name: "secrets"},
			Spec: secretsstorev1.SecretProviderClassSpec{Provider: "aws", Parameters: map[string]string{
				"region":  "eu-west-1",
				"objects": "- objectName: db\n  objectType: secretsmanager\n  jmesPath:\n    - path: user\n      objectAlias: username\n",
			}},
		}},
		Providers: reg,
		Log:       logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver: %v", err)
		}
		unmountLeftovers(t, dir)
	})

	lis, err := net.Listen("unix", coSock)
	if err != nil {
		t.Fatal(err)
	}
	driverConn, err := grpc.NewClient("unix://"+nodeSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { driverConn.Close() })
	co := grpc.NewServer()
	csi.RegisterControllerServer(co, &coController{})
	csi.RegisterIdentityServer(co, coIdentity{driver: csi.NewIdentityClient(driverConn)})
	go func() { _ = co.Serve(lis) }()
	t.Cleanup(co.Stop)

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + nodeSock
	cfg.ControllerAddress = "unix://" + coSock
	cfg.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(kubeletReadOnly)}
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeParameters = map[string]string{
		driver.AttrClass:          "secrets",
		driver.AttrPodNamespace:   "sanity",
		driver.AttrPodName:        "pod",
		driver.AttrPodUID:         "6f0d1e2a-0000-4000-8000-000000000001",
		driver.AttrServiceAccount: "default",
		driver.AttrTokens:         `{"sts.amazonaws.com":{"token":"sanity-token","expirationTimestamp":"2099-01-01T00:00:00Z"}}`,
	}
	sc := sanity.GinkgoTest(&cfg)
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	// The driver has no controller service: its volumes are inline, node-local tmpfs.
	suite.SkipStrings = append(suite.SkipStrings, `Controller Service \[Controller Server\]`)
	ginkgo.RunSpecs(t, "secretmount csi-sanity", suite, reporter)
	sc.Finalize()
}

// unmountLeftovers fails the test for any mount left under dir, and removes it so the
// machine stays clean.
func unmountLeftovers(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Errorf("read mounts: %v", err)
		return
	}
	defer f.Close()
	m := mount.New("")
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir) {
			t.Errorf("mount left behind at %s", fields[1])
			if err := m.Unmount(fields[1]); err != nil {
				t.Errorf("unmount %s: %v", fields[1], err)
			}
		}
	}
}
