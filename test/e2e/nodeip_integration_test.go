//go:build integration

package e2e

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// nodeAddress is the node's own IP: kubelet refuses a loopback node IP, so the test adds
// an address from the documentation range 192.0.2.0/24, which routes nowhere, and removes
// it afterwards. It goes on a dummy interface of its own when the kernel has the dummy
// driver, else on lo as a /32 (still only reachable from this machine).
type nodeAddress struct {
	IP   string
	dev  string
	made bool // dev was created by the test
}

func addNodeAddress(t *testing.T) *nodeAddress {
	t.Helper()
	used := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				used[ipn.IP.String()] = true
			}
		}
	}
	var ip string
	for range 50 {
		n, err := rand.Int(rand.Reader, big.NewInt(240))
		if err != nil {
			t.Fatal(err)
		}
		candidate := fmt.Sprintf("192.0.2.%d", 10+n.Int64())
		if !used[candidate] {
			ip = candidate
			break
		}
	}
	if ip == "" {
		t.Fatal("no free address in 192.0.2.0/24 for the node")
	}
	a := &nodeAddress{IP: ip, dev: "sme2e" + strings.ReplaceAll(ip[len("192.0.2."):], ".", "")}
	if err := ipCmd("link", "add", a.dev, "type", "dummy"); err == nil {
		a.made = true
		if err := ipCmd("link", "set", a.dev, "up"); err != nil {
			a.remove(t)
			t.Fatal(err)
		}
	} else {
		t.Logf("no dummy interface (%v); the node address goes on lo", err)
		a.dev = "lo"
	}
	if err := ipCmd("addr", "add", ip+"/32", "dev", a.dev); err != nil {
		a.remove(t)
		t.Fatal(err)
	}
	t.Cleanup(func() { a.remove(t) })
	return a
}

func (a *nodeAddress) remove(t *testing.T) {
	t.Helper()
	if a.made {
		if err := ipCmd("link", "del", a.dev); err != nil {
			t.Errorf("removing the node's interface: %v", err)
		}
		a.made = false
		return
	}
	if a.dev == "" {
		return
	}
	if err := ipCmd("addr", "del", a.IP+"/32", "dev", a.dev); err != nil && !strings.Contains(err.Error(), "Cannot assign") {
		t.Errorf("removing the node's address: %v", err)
	}
	a.dev = ""
}

func ipCmd(args ...string) error {
	path, err := hostBinary("ip")
	if err != nil {
		return err
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
