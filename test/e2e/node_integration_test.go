//go:build integration

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"golang.org/x/sys/unix"

	"github.com/secretmount/secretmount/test/harness"
)

const (
	// nodeStartTimeout bounds start-ups on a busy two-core machine; it is not a claim
	// about speed.
	nodeStartTimeout = 3 * time.Minute
	// hostPath is what every component the test starts gets as PATH: runc, mount and ip
	// live in the sbin folders.
	hostPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

var (
	pauseImage  = Image{Ref: "e2e.local/pause:1", Package: "test/e2e/images/pause", Entrypoint: "/pause"}
	readerImage = Image{Ref: "e2e.local/reader:1", Package: "test/e2e/images/reader", Entrypoint: "/reader"}
)

// Node is a kubelet and its containerd, registered with the harness's API server.
type Node struct {
	Name string
	IP   string
	// Dir holds everything of the node; RootDir is kubelet's root folder (a shared
	// mount) and PodLogsDir its pod-log folder.
	Dir        string
	RootDir    string
	PodLogsDir string
	// Containerd is containerd's socket path.
	Containerd string
	// Logs are the files holding containerd's and kubelet's output.
	Logs []string

	api *harness.APIServer
}

// PluginsDir is the folder CSI drivers put their sockets in.
func (n *Node) PluginsDir() string { return filepath.Join(n.RootDir, "plugins") }

// RegistryDir is the folder kubelet's plugin watcher watches for registration sockets.
func (n *Node) RegistryDir() string { return filepath.Join(n.RootDir, "plugins_registry") }

// kubeletPath is the kubelet that hack/setup/node.sh builds next to kube-apiserver.
func kubeletPath() string {
	return filepath.Join(harness.CacheDir(), "kubernetes-"+kubeVersion(), "kubelet")
}

// StartNode starts containerd and kubelet for api, with the test images imported, and
// waits until the Node is Ready. When the test ends it deletes every pod bound to the node
// and waits for kubelet to tear their volumes down, then stops kubelet, removes leftover
// containers, stops containerd and unmounts whatever is left under the node's folder.
func StartNode(t *testing.T, api *harness.APIServer) *Node {
	t.Helper()
	harness.RequireRoot(t)
	for _, bin := range []string{"containerd", "runc", "ctr", "ip"} {
		if _, err := hostBinary(bin); err != nil {
			harness.Unavailable(t, "%v; run `make setup` (hack/setup/node.sh) as root", err)
		}
	}
	if info, err := os.Stat(kubeletPath()); err != nil || info.Mode()&0o111 == 0 {
		harness.Unavailable(t, "kubelet not found at %s; run `make setup` (hack/setup/node.sh)", kubeletPath())
	}

	// A short folder name: unix socket paths under it must stay within 107 bytes.
	dir, err := os.MkdirTemp("", "sm-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{
		Name:       "e2e-" + filepath.Base(dir)[len("sm-e2e-"):],
		Dir:        dir,
		RootDir:    filepath.Join(dir, "kubelet"),
		PodLogsDir: filepath.Join(dir, "pod-logs"),
		Containerd: filepath.Join(dir, "containerd", "containerd.sock"),
		api:        api,
	}
	n.Name = strings.ToLower(n.Name)
	// Registered first, so it runs last: after every process is stopped.
	leftovers := hostDirsContainerdMakes()
	t.Cleanup(func() {
		n.removeContainerLogLinks(t)
		removeEmptyDirs(t, leftovers)
		if err := unmountUnder(dir); err != nil {
			t.Errorf("unmounting under %s: %v", dir, err)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	for _, d := range []string{n.RootDir, n.PodLogsDir, n.PluginsDir(), n.RegistryDir(), filepath.Join(dir, "cni"), filepath.Join(dir, "images"), filepath.Join(dir, "containerd")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := makeSharedMount(n.RootDir); err != nil {
		t.Fatal(err)
	}
	n.IP = addNodeAddress(t).IP

	mark := time.Now()
	n.startContainerd(t)
	n.importImages(t)
	t.Logf("containerd up, images built and imported in %s", time.Since(mark).Round(100*time.Millisecond))
	n.startKubelet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := api.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// hack/setup/kubernetes.sh stamps the version into the binary; the node reports it.
	if got, want := node.Status.NodeInfo.KubeletVersion, kubeVersion(); got != want {
		t.Errorf("node %s reports kubelet %q, want %q", n.Name, got, want)
	}
	return n
}

// kubeVersion is the Kubernetes release hack/setup builds (KUBE_VERSION, as there).
func kubeVersion() string {
	if v := os.Getenv("KUBE_VERSION"); v != "" {
		return v
	}
	return "v1.34.4"
}

func (n *Node) startContainerd(t *testing.T) {
	t.Helper()
	cd := filepath.Join(n.Dir, "containerd")
	cniConf := filepath.Join(n.Dir, "cni", "net.d")
	if err := os.MkdirAll(cniConf, 0o750); err != nil {
		t.Fatal(err)
	}
	// The pods use the host network; a loopback-only network is enough for the runtime to
	// report its network ready, so the node goes Ready.
	if err := os.WriteFile(filepath.Join(cniConf, "10-loopback.conflist"),
		[]byte(`{"cniVersion":"1.0.0","name":"e2e-loopback","plugins":[{"type":"loopback"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(containerdConfig, filepath.Join(cd, "root"), filepath.Join(cd, "state"), n.Containerd,
		filepath.Join(cd, "opt"), pauseImage.Ref, filepath.Join(cd, "runc"), cniConf)
	configFile := filepath.Join(cd, "config.toml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// Registered before containerd starts, so it runs after kubelet is stopped and before
	// containerd is: containers of pods kubelet did not finish removing go with their shims.
	t.Cleanup(func() { n.removeContainers(t) })
	p := harness.StartProgram(t, harness.ProgramSpec{
		Name:         "containerd",
		Path:         mustHostBinary(t, "containerd"),
		Args:         []string{"--config", configFile},
		Env:          []string{hostPath, "HOME=" + cd, "LANG=C.UTF-8"},
		Ready:        harness.FileExists(n.Containerd),
		ReadyTimeout: nodeStartTimeout,
	})
	n.Logs = append(n.Logs, p.Log)
}

// containerdConfig is containerd's configuration for this machine: no systemd (cgroupfs),
// no AppArmor, and restrict_oom_score_adj, without which every sandbox fails here because
// root may not lower oom_score_adj.
const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`

func (n *Node) ctr(args ...string) (string, error) {
	path, err := hostBinary("ctr")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(path, append([]string{"--address", n.Containerd, "--namespace", "k8s.io"}, args...)...)
	cmd.Env = []string{hostPath, "HOME=" + n.Dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// importImages builds the pause and reader binaries and imports them as images.
func (n *Node) importImages(t *testing.T) {
	t.Helper()
	root := harness.RepoRoot(t)
	for _, img := range []Image{pauseImage, readerImage} {
		bin := filepath.Join(n.Dir, "images", filepath.Base(img.Package))
		if err := buildStatic(root, img.Package, bin); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		archive := bin + ".tar"
		if err := writeArchive(img, data, archive); err != nil {
			t.Fatal(err)
		}
		if _, err := n.ctr("images", "import", archive); err != nil {
			t.Fatalf("importing %s: %v", img.Ref, err)
		}
	}
}

// removeContainers force-removes what kubelet left running in containerd, by container
// id, so no shim outlives the test.
func (n *Node) removeContainers(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(n.Containerd); err != nil {
		return
	}
	out, err := n.ctr("containers", "list", "--quiet")
	if err != nil {
		t.Errorf("listing leftover containers: %v", err)
		return
	}
	for _, id := range strings.Fields(out) {
		if _, err := n.ctr("tasks", "kill", "--signal", "SIGKILL", id); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Logf("killing leftover task %s: %v", id, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := n.ctr("tasks", "delete", "--force", id)
			if err == nil || strings.Contains(err.Error(), "not found") || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := n.ctr("containers", "delete", id); err != nil {
			t.Errorf("removing leftover container %s: %v", id, err)
		}
	}
}

func (n *Node) startKubelet(t *testing.T) {
	t.Helper()
	ports, err := freePorts(n.IP, 1)
	if err != nil {
		t.Fatal(err)
	}
	healthz, err := freePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(kubeletConfig, n.IP, ports[0], healthz[0], "unix://"+n.Containerd, n.PodLogsDir)
	configFile := filepath.Join(n.Dir, "kubelet-config.yaml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// Registered before kubelet starts, so it runs while kubelet still runs: kubelet is
	// what unpublishes the deleted pods' volumes.
	t.Cleanup(func() { n.deletePods(t) })
	p := harness.StartProgram(t, harness.ProgramSpec{
		Name: "kubelet",
		Path: kubeletPath(),
		Args: []string{
			"--config", configFile,
			"--kubeconfig", n.api.Kubeconfig,
			"--root-dir", n.RootDir,
			"--cert-dir", filepath.Join(n.RootDir, "pki"),
			"--hostname-override", n.Name,
			"--node-ip", n.IP,
			"--v", "2",
		},
		Env:          []string{hostPath, "HOME=" + n.Dir, "LANG=C.UTF-8"},
		Ready:        n.ready,
		ReadyTimeout: nodeStartTimeout,
	})
	n.Logs = append(n.Logs, p.Log)
}

// kubeletConfig fits this machine: PID 1 is not systemd and cgroups are v1, so cgroupfs
// and failCgroupV1 false; no per-QoS cgroups, so nothing is left in the host's cgroup tree
// but the pods' own; no static pods; its API open only to this machine's tests.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
containerRuntimeEndpoint: %s
podLogsDir: %s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
staticPodPath: ""
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
registerNode: true
`

// ready reports nil once the Node object says Ready.
func (n *Node) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := n.api.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s not Ready: %s: %s", n.Name, c.Reason, c.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", n.Name)
}

// deletePods deletes every pod bound to the node and waits until kubelet has removed
// them, which it does only after their volumes are unpublished.
func (n *Node) deletePods(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sel := metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name}
	pods, err := n.api.Client.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		t.Errorf("listing the node's pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		if err := deletePod(ctx, n.api, p.Namespace, p.Name); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// freePorts returns n TCP ports that were free on ip a moment ago.
func freePorts(ip string, count int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range count {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("failed to find a free port on %s: %w", ip, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// containerLogLinks is where kubelet links every container's log whatever its pod-log
// folder; the links of this node's containers point into n.PodLogsDir.
const containerLogLinks = "/var/log/containers"

// removeContainerLogLinks removes the links kubelet left for this node's containers
// (kubelet removes one only when it garbage-collects the container).
func (n *Node) removeContainerLogLinks(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(containerLogLinks)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(containerLogLinks, e.Name())
		target, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(target, n.PodLogsDir+"/") {
			continue
		}
		if err := os.Remove(p); err != nil {
			t.Errorf("removing the log link %s: %v", p, err)
		}
	}
}

// hostDirsContainerdMakes lists the host folders containerd and runc create outside the
// node's own folder and that do not exist yet: the cgroup parent of the k8s.io namespace
// in each hierarchy, and the folder of the shims' sockets (fixed in containerd 1.6).
func hostDirsContainerdMakes() []string {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	var candidates, dirs []string
	for _, h := range hierarchies {
		if info, err := os.Stat(h); err == nil && info.IsDir() {
			candidates = append(candidates, filepath.Join(h, "k8s.io"))
		}
	}
	for _, d := range append(candidates, "/run/containerd/s", "/run/containerd") {
		if _, err := os.Lstat(d); errors.Is(err, os.ErrNotExist) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// removeEmptyDirs removes the folders that are there and empty (an empty cgroup has only
// its control files, which rmdir accepts), in order; one in use stays.
func removeEmptyDirs(t *testing.T, dirs []string) {
	t.Helper()
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			t.Logf("leaving %s: %v", d, err)
		}
	}
}

// hostBinary finds a program of the node's packages on the test's PATH or in the sbin
// folders, which a non-login PATH may lack.
func hostBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func mustHostBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := hostBinary(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
