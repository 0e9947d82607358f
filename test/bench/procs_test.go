//go:build bench

package bench

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a process the benchmark started; it is stopped by PID when the test ends.
type proc struct {
	name    string
	pid     int
	metrics string // http://host:port/metrics, or "" when the process has none
}

// startProc runs bin with args in its own process group and waits for socket.
func startProc(t *testing.T, name, bin, socket string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); _ = logFile.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (last lines):\n%s", name, tail(string(b), 40))
		}
	})
	for range 600 {
		if _, err := os.Stat(socket); err == nil {
			return &proc{name: name, pid: cmd.Process.Pid}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited (%v):\n%s", name, err, tail(string(b), 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not open %s within 30s", name, socket)
	return nil
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// freeAddr is a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// figures are what the operating system (and the process's metrics, for goroutines)
// tell about one process at one moment.
type figures struct {
	rssKiB int // VmRSS: RssAnon + RssFile + RssShmem
	// rssAnonKiB is the resident heap, stacks and other private memory; rssFileKiB the
	// resident pages of mapped files, mostly the process's own binary, which VmRSS
	// counts in full although the page cache shares them and can drop them.
	rssAnonKiB int
	rssFileKiB int
	threads    int
	fds        int
	goroutines int // -1 when the process does not expose it
}

func measure(t *testing.T, p *proc) figures {
	t.Helper()
	f := figures{goroutines: -1}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/status")
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	parseStatus(string(status), &f)
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(p.pid) + "/fd")
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	f.fds = len(fds)
	if p.metrics != "" {
		f.goroutines = scrapeGoroutines(p.metrics)
	}
	return f
}

// parseStatus fills f's memory and thread figures from a /proc/PID/status text.
func parseStatus(status string, f *figures) {
	kib := func(v string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		return n
	}
	for _, line := range strings.Split(status, "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch name {
		case "VmRSS":
			f.rssKiB = kib(v)
		case "RssAnon":
			f.rssAnonKiB = kib(v)
		case "RssFile":
			f.rssFileKiB = kib(v)
		case "Threads":
			f.threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
}

// scrapeGoroutines reads go_goroutines from a Prometheus endpoint; -1 when absent.
func scrapeGoroutines(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			var n float64
			if _, err := fmt.Sscanf(v, "%g", &n); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// userHZ is the unit of /proc/PID/stat CPU times; the kernel's USER_HZ is 100 on every
// architecture Linux exports to user space with these fields.
const userHZ = 100

// cpuTime is the user plus system CPU time p has used so far.
func cpuTime(t *testing.T, p *proc) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	// The command name may hold spaces; the fields after it are fixed: utime is the
	// 12th and stime the 13th after the closing parenthesis.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		t.Fatalf("%s: short /proc stat %q", p.name, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: /proc stat times %q %q", p.name, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ
}

// TestParseStatus reads this process's own /proc status: the two parts the tables
// show must be found and must not add up to more than the VmRSS they split.
func TestParseStatus(t *testing.T) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var f figures
	parseStatus(string(b), &f)
	if f.rssAnonKiB <= 0 || f.rssFileKiB <= 0 || f.threads <= 0 {
		t.Fatalf("parsed %+v from:\n%s", f, b)
	}
	if f.rssAnonKiB+f.rssFileKiB > f.rssKiB {
		t.Errorf("RssAnon %d + RssFile %d kB exceed VmRSS %d kB", f.rssAnonKiB, f.rssFileKiB, f.rssKiB)
	}
}
