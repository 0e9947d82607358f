package harness

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	shmDir    = "/dev/shm"
	shmPrefix = "secretmount-etcd-"
)

func startEtcd(inst *instance, path, clientURL, peerURL string) error {
	// etcd fsyncs every write; on tmpfs that costs nothing, which keeps two test
	// packages' API servers from waiting on the disk.
	removeOrphanedShm()
	dataDir, err := os.MkdirTemp(shmDir, shmPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		dataDir = inst.path("etcd")
	} else {
		inst.dirs = append(inst.dirs, dataDir)
	}
	_, err = inst.start(processSpec{
		name: "etcd",
		path: path,
		log:  inst.path("etcd.log"),
		args: []string{
			"--name=harness",
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=harness=" + peerURL,
			// kube-apiserver asks etcd for watch progress only from etcd 3.4.31 on; with
			// Debian's 3.4.23 the watch cache of a quiet resource falls behind and a list
			// "from now" waits ("Too large resource version") until etcd's periodic
			// progress notification, every 10 min by default.
			"--experimental-watch-progress-notify-interval=1s",
		},
	})
	if err != nil {
		return err
	}
	return waitReady("etcd /health", etcdTimeout, inst.procs, func() error {
		resp, err := http.Get(clientURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health answered %s", resp.Status)
		}
		return nil
	})
}

// removeOrphanedShm removes etcd data folders in /dev/shm left by test binaries that
// were killed before their cleanup ran: tmpfs holds them in memory until removed. The
// folder's name carries the PID of the binary that made it.
func removeOrphanedShm() {
	dirs, _ := filepath.Glob(filepath.Join(shmDir, shmPrefix+"*"))
	for _, d := range dirs {
		owner, _, named := strings.Cut(strings.TrimPrefix(filepath.Base(d), shmPrefix), "-")
		pid, err := strconv.Atoi(owner)
		if !named || err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			_ = os.RemoveAll(d)
		}
	}
}
