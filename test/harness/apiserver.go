package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// ServiceAccountIssuer is the issuer (and default audience) of the API server's
	// ServiceAccount tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	apiServerTimeout     = 3 * time.Minute
	etcdTimeout          = time.Minute
)

// APIServer is a running kube-apiserver backed by its own etcd, with RBAC on and a static
// admin token in group system:masters. There is no controller manager, scheduler or
// kubelet: objects are stored and served, nothing reconciles them. A deleted namespace
// stays Terminating, no ServiceAccount gets a token Secret, no Pod runs, and the
// aggregated ClusterRoles (admin, edit, view) have no rules: bind your own roles.
type APIServer struct {
	// Host is the API server's URL, https://127.0.0.1:<port>.
	Host string
	// CA is the PEM the API server's serving certificate chains to (from its --cert-dir);
	// CAFile holds the same bytes.
	CA     []byte
	CAFile string
	// AdminToken authenticates as user "admin" in group system:masters.
	AdminToken string
	// Kubeconfig is a file with the admin credentials, for subprocesses
	// (secretmount driver --kubeconfig ...).
	Kubeconfig string
	// Client is an admin clientset.
	Client kubernetes.Interface
	// Dynamic is an admin dynamic client (custom resources, ApplyYAML).
	Dynamic dynamic.Interface

	config *rest.Config
	inst   *instance
	mapper meta.ResettableRESTMapper
}

func (a *APIServer) instanceOf() *instance { return a.inst }

// RestConfig returns a copy of the admin rest.Config, safe to modify.
func (a *APIServer) RestConfig() *rest.Config { return rest.CopyConfig(a.config) }

// StartAPIServer starts etcd and kube-apiserver for this test and stops them when it
// ends. Prefer SharedAPIServer unless the test needs a server of its own, such as one
// with extra kube-apiserver flags (they come after the harness's, so they win).
func StartAPIServer(t testing.TB, extraArgs ...string) *APIServer {
	t.Helper()
	a, err := retryPortClash(func() (*APIServer, error) { return startAPIServerOnce(extraArgs) })
	if err != nil {
		failStart(t, "APIServer", err)
	}
	t.Cleanup(func() {
		if err := a.inst.stop(); err != nil {
			t.Errorf("failed to stop the API server: %v", err)
		}
	})
	a.inst.logOnFailure(t)
	return a
}

func startAPIServer() (*APIServer, error) {
	return retryPortClash(func() (*APIServer, error) { return startAPIServerOnce(nil) })
}

func startAPIServerOnce(extraArgs []string) (*APIServer, error) {
	etcdPath, err := lookPath("etcd")
	if err != nil {
		return nil, err
	}
	apiPath, err := executable(KubeAPIServerPath(), "kube-apiserver")
	if err != nil {
		return nil, err
	}
	inst, err := newInstance("apiserver")
	if err != nil {
		return nil, err
	}
	a, err := bootAPIServer(inst, etcdPath, apiPath, extraArgs)
	if err != nil {
		return nil, inst.failStartup(err)
	}
	return a, nil
}

func bootAPIServer(inst *instance, etcdPath, apiPath string, extraArgs []string) (*APIServer, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	if err := startEtcd(inst, etcdPath, etcdURL, "http://127.0.0.1:"+strconv.Itoa(ports[1])); err != nil {
		return nil, err
	}

	keyFile, pubFile, err := writeServiceAccountKey(inst.dir)
	if err != nil {
		return nil, err
	}
	token, err := randomHex(24)
	if err != nil {
		return nil, err
	}
	tokenFile := inst.path("tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(token+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write the token file: %w", err)
	}
	certDir := inst.path("certs")
	port := ports[2]
	_, err = inst.start(processSpec{
		name: "kube-apiserver",
		path: apiPath,
		log:  inst.path("kube-apiserver.log"),
		args: append([]string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + certDir,
			"--service-cluster-ip-range=10.96.0.0/24",
			"--service-account-issuer=" + ServiceAccountIssuer,
			"--service-account-key-file=" + pubFile,
			"--service-account-signing-key-file=" + keyFile,
			"--token-auth-file=" + tokenFile,
			"--authorization-mode=RBAC",
			"--disable-admission-plugins=ServiceAccount",
			// As on real clusters that run CSI node plugins (kubeadm and the managed
			// offerings turn it on): without it the API server refuses the driver
			// DaemonSet's privileged container, which mounting needs.
			"--allow-privileged=true",
			// A loopback advertise address is not a valid Endpoints address; with no
			// pods to route to, the reconciler has nothing to do anyway.
			"--endpoint-reconciler-type=none",
			"--enable-priority-and-fairness=false",
			"--profiling=false",
		}, extraArgs...),
	})
	if err != nil {
		return nil, err
	}

	host := "https://127.0.0.1:" + strconv.Itoa(port)
	caFile := filepath.Join(certDir, "apiserver.crt")
	var ca []byte
	err = waitReady("kube-apiserver /readyz", apiServerTimeout, inst.procs, func() error {
		if ca == nil {
			b, err := os.ReadFile(caFile)
			if err != nil {
				return fmt.Errorf("no serving certificate yet: %w", err)
			}
			ca = b
		}
		return checkReadyz(host, ca, token)
	})
	if err != nil {
		return nil, err
	}

	config := &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             100,
		Burst:           200,
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("failed to build a clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("failed to build a dynamic client: %w", err)
	}
	mapper, err := newRESTMapper(config)
	if err != nil {
		return nil, err
	}
	a := &APIServer{
		Host:       host,
		CA:         ca,
		CAFile:     caFile,
		AdminToken: token,
		Client:     client,
		Dynamic:    dyn,
		config:     config,
		inst:       inst,
		mapper:     mapper,
	}
	if a.Kubeconfig, err = writeKubeconfig(inst.path("kubeconfig"), host, ca, token); err != nil {
		return nil, err
	}
	if LeakRecording() {
		inst.beforeStop = a.recordEvents
		if err := recordValue("apiserver-admin-token", token); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func checkReadyz(host string, ca []byte, token string) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("the serving certificate file holds no PEM certificate")
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, host+"/readyz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %s", resp.Status)
	}
	return nil
}
