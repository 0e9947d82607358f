package harness

import (
	"fmt"
	"net/http"
	"os"
)

func startEtcd(inst *instance, path, clientURL, peerURL string) error {
	// etcd fsyncs every write; on tmpfs that costs nothing, which keeps two test
	// packages' API servers from waiting on the disk.
	dataDir, err := os.MkdirTemp("/dev/shm", "secretmount-etcd-")
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
