//go:build integration

package reliability

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// faultDriver is the real driver, in this process so its goroutines and open files can
// be counted, serving CSI on a unix socket with the backends of reg.
type faultDriver struct {
	d       *driver.Driver
	csi     *csiclient.Client
	metrics *prometheus.Registry
	// root holds the pods' folders, as /var/lib/kubelet/pods would.
	root string
}

func startFaultDriver(t *testing.T, classes driver.ClassGetter, reg *provider.Registry, tune func(*driver.Options)) *faultDriver {
	t.Helper()
	harness.RequireRoot(t)
	sockets, err := os.MkdirTemp("", "flt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockets) })
	fd := &faultDriver{metrics: prometheus.NewRegistry(), root: t.TempDir()}
	// Runs before t.TempDir's removal: whatever a failed run left mounted goes, so
	// nothing outlives the test.
	t.Cleanup(func() {
		for mp := range tmpfsMountsUnder(t, fd.root) {
			_ = unmountDetach(mp)
		}
	})
	opts := driver.Options{
		Endpoint: filepath.Join(sockets, "csi.sock"), NodeID: "node-1", Classes: classes, Providers: reg,
		Metrics: fd.metrics, Log: harness.LeakLogger(t),
	}
	t.Cleanup(func() { recordMetrics(t, fd.metrics) })
	if tune != nil {
		tune(&opts)
	}
	fd.d, err = driver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, context.Background(), fd.d.Run)
	fd.csi, err = csiclient.Dial(opts.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fd.csi.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fd.csi.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return fd
}

func unmountDetach(path string) error { return syscall.Unmount(path, syscall.MNT_DETACH) }

// volume is pod i's volume of class in namespace ns, with ServiceAccount sa; its
// parent folder exists, as kubelet makes it, and the target does not.
func (fd *faultDriver) volume(t *testing.T, i int, ns, sa, class string, tokens map[string]csiclient.Token) csiclient.Volume {
	t.Helper()
	uid := fmt.Sprintf("fa017000-0000-4000-8000-%012d", i)
	target := filepath.Join(fd.root, "pods", uid, "volumes", "kubernetes.io~csi", "secrets", "mount")
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		t.Fatal(err)
	}
	return csiclient.Volume{
		TargetPath: target,
		Pod:        csiclient.Pod{Namespace: ns, Name: fmt.Sprintf("app-%d", i), UID: uid, ServiceAccount: sa},
		Class:      class,
		Tokens:     tokens,
	}
}

// outcomes tallies publishes by gRPC code and keeps the first problems seen.
type outcomes struct {
	mu     sync.Mutex
	byCode map[codes.Code]int
	// sample is the first message of each failure cause, for the log.
	sample map[string]string
	// causes counts failures by the transport or backend cause their message names.
	causes   map[string]int
	problems []string
	extra    int
}

func newOutcomes() *outcomes {
	return &outcomes{byCode: map[codes.Code]int{}, sample: map[string]string{}, causes: map[string]int{}}
}

func (o *outcomes) add(err error) codes.Code {
	c := status.Code(err)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byCode[c]++
	if err == nil {
		return c
	}
	msg := status.Convert(err).Message()
	cause := causeOf(msg)
	if _, ok := o.sample[cause]; !ok {
		o.sample[cause] = c.String() + ": " + msg
	}
	o.causes[cause]++
	return c
}

// status5xx finds an HTTP 5xx status in a failure message, as the AWS and Vault
// errors state it.
var status5xx = regexp.MustCompile(`(?i)(status|code:?) 5[0-9][0-9]`)

// causeOf sorts a failure message by the fault behind it.
func causeOf(msg string) string {
	switch {
	case strings.Contains(msg, "deadline exceeded"):
		return "deadline exceeded"
	case strings.Contains(msg, "malformed response"):
		return "malformed (truncated) response"
	case strings.Contains(msg, "unexpected EOF"):
		return "truncated body"
	case strings.Contains(msg, "connection reset"):
		return "connection reset"
	case status5xx.MatchString(msg):
		return "HTTP 5xx"
	case strings.Contains(msg, "EOF"):
		return "connection closed"
	}
	return "other"
}

// causeSummary lists failures by cause.
func (o *outcomes) causeSummary() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for c, n := range o.causes {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// samples lists one failure message per cause.
func (o *outcomes) samples() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, m := range o.sample {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func (o *outcomes) problem(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.problems) < 10 {
		o.problems = append(o.problems, fmt.Sprintf(format, args...))
		return
	}
	o.extra++
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for c, n := range o.byCode {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// report fails t with the problems collected by the workers.
func (o *outcomes) report(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.problems {
		t.Error(p)
	}
	if o.extra > 0 {
		t.Errorf("and %d more problems", o.extra)
	}
}

// publishOnce publishes v and checks the outcome: exact files then an unpublish that
// leaves nothing, or a failure with Unavailable or DeadlineExceeded that left no mount
// and nothing in the target folder. It runs on worker goroutines, so it records
// problems instead of failing the test.
func publishOnce(fd *faultDriver, v csiclient.Volume, want map[string]string, out *outcomes) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := out.add(fd.csi.Publish(ctx, v))
	switch code {
	case codes.OK:
		if got, err := topFiles(v.TargetPath); err != nil {
			out.problem("pod %s: published, but reading its files: %v", v.Pod.Name, err)
		} else if diff := diffFiles(got, want); diff != "" {
			out.problem("pod %s: published files differ from the backend's: %s", v.Pod.Name, diff)
		}
		if err := fd.csi.Unpublish(ctx, v); err != nil {
			out.problem("pod %s: unpublish: %v", v.Pod.Name, err)
		}
		if err := leftNothing(v.TargetPath); err != nil {
			out.problem("pod %s: after unpublish: %v", v.Pod.Name, err)
		}
	case codes.Unavailable, codes.DeadlineExceeded:
		if err := leftNothing(v.TargetPath); err != nil {
			out.problem("pod %s: failed publish (%s): %v", v.Pod.Name, code, err)
		}
	default:
		out.problem("pod %s: publish failed with %s, want OK, Unavailable or DeadlineExceeded", v.Pod.Name, code)
		if err := leftNothing(v.TargetPath); err != nil {
			out.problem("pod %s: failed publish (%s): %v", v.Pod.Name, code, err)
		}
	}
}

// runPublishes publishes volumes 0..n-1 (made by volume) on workers goroutines.
func runPublishes(n, workers int, publish func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				publish(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// topFiles reads the files a pod sees in a published folder (the writer's ".."
// entries are its own).
func topFiles(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = string(b)
	}
	return out, nil
}

// diffFiles names the files that differ, never their contents (they are secrets).
func diffFiles(got, want map[string]string) string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, name+" missing")
		case g != w:
			diffs = append(diffs, name+" has other content")
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, name+" unexpected")
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, ", ")
}

// renderedFiles is what a volume of spc must hold when the backend has values (one per
// plan object, in order): the planner's own rendering.
func renderedFiles(t *testing.T, plan *providerclass.Plan, values ...string) map[string]string {
	t.Helper()
	if len(values) != len(plan.Objects) {
		t.Fatalf("%d values for %d objects", len(values), len(plan.Objects))
	}
	contents := make([]providerclass.ObjectContent, len(values))
	for i, v := range values {
		contents[i] = providerclass.ObjectContent{Bytes: []byte(v), Version: "v"}
	}
	files, err := plan.Render(contents)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[f.Path] = string(f.Bytes)
	}
	return out
}

// leftNothing checks that target is not a mount point and holds nothing (it may be
// absent, or an empty folder).
func leftNothing(target string) error {
	mounted, err := isMountPoint(target)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("%s is still a mount point", target)
	}
	entries, err := os.ReadDir(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		return fmt.Errorf("%s holds %v", target, names)
	}
	return nil
}

// isMountPoint reads /proc/self/mountinfo; it does not fail a test, so workers can
// call it.
func isMountPoint(path string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			return true, nil
		}
	}
	return false, s.Err()
}

// procStats are the goroutines and open files of this process, which runs the driver.
type procStats struct{ goroutines, fds int }

func (s procStats) String() string {
	return fmt.Sprintf("%d goroutines, %d open fds", s.goroutines, s.fds)
}

func sampleProc(t *testing.T) procStats {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return procStats{goroutines: runtime.NumGoroutine(), fds: len(entries)}
}

// quietSample closes the proxies' connections, so idle keep-alive connections (a socket
// on each end and a few goroutines each) are not counted, and samples until two samples
// 100ms apart agree, for at most 5 s.
func quietSample(t *testing.T, proxies ...*harness.FaultProxy) procStats {
	t.Helper()
	for _, p := range proxies {
		p.CloseConnections()
	}
	s := sampleProc(t)
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		next := sampleProc(t)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// checkNoGrowth fails t when the process, quiet again, has more than tolerance
// goroutines or fds above base. Goroutines of closed connections take a moment to end,
// so it samples for up to 15 s before it gives up.
func checkNoGrowth(t *testing.T, base procStats, tolerance int, proxies ...*harness.FaultProxy) procStats {
	t.Helper()
	var after procStats
	for range 15 {
		after = quietSample(t, proxies...)
		if after.goroutines <= base.goroutines+tolerance && after.fds <= base.fds+tolerance {
			return after
		}
	}
	t.Errorf("growth: %s before the run, %s after it (tolerance %d)", base, after, tolerance)
	return after
}

// checkRequestBounds fails t when a flow (a class of requests that belongs to one
// publish) reached the backend more often than its bound; it returns the largest count
// of each flow kind. Keys are "<kind> <id>"; kinds without a bound must not occur.
func checkRequestBounds(t *testing.T, byKey map[string]int, bounds map[string]int) map[string]int {
	t.Helper()
	most := map[string]int{}
	over := 0
	for key, n := range byKey {
		kind, _, _ := strings.Cut(key, " ")
		bound, ok := bounds[kind]
		if !ok {
			t.Errorf("%d requests of unexpected kind %q", n, key)
			continue
		}
		most[kind] = max(most[kind], n)
		if n > bound {
			over++
			if over <= 5 {
				t.Errorf("%s reached the backend %d times, bound %d", key, n, bound)
			}
		}
	}
	if over > 5 {
		t.Errorf("and %d more flows over their bound", over-5)
	}
	return most
}

// credentialRE finds the access key of a SigV4 Authorization header.
var credentialRE = regexp.MustCompile(`Credential=([^/]+)/`)

// awsFlow names an AWS request by what ties it to one publish: STS calls by the
// session name (made from the pod's ServiceAccount), the rest by the access key STS
// gave that publish.
func awsFlow(r *http.Request, body []byte) string {
	if r.Header.Get("X-Amz-Target") == "" {
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "AssumeRoleWithWebIdentity" {
			return "sts " + form.Get("RoleSessionName")
		}
	}
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return "key " + m[1]
	}
	return "unsigned " + r.URL.Path
}

// vaultFlow names a Vault request by what ties it to one publish: logins by the
// ServiceAccount of their token, the rest by the Vault token that login gave.
func vaultFlow(r *http.Request, body []byte) string {
	if strings.HasSuffix(r.URL.Path, "/login") {
		var login struct {
			JWT string `json:"jwt"`
		}
		if err := json.Unmarshal(body, &login); err == nil {
			return "login " + jwtSubject(login.JWT)
		}
		return "login ?"
	}
	if tok := r.Header.Get("X-Vault-Token"); tok != "" {
		return "token " + tok
	}
	return "anonymous " + r.URL.Path
}

// jwtSubject is the sub claim of a JWT, unverified ("" when it has none).
func jwtSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}

// unsignedToken is a JWT-shaped ServiceAccount token for audience aud; moto's STS does
// not verify tokens, the backend only reads their subject.
func unsignedToken(ns, sa, aud string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": "system:serviceaccount:" + ns + ":" + sa, "aud": []string{aud}})
	return enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte("sig"))
}

// faultSummary is one line of counts for the log: faults injected by kind.
func faultSummary(p *harness.FaultProxy) string {
	f := p.Faults()
	total := 0
	for _, n := range f {
		total += n
	}
	return fmt.Sprintf("%d requests; faults: delay %d, reset %d, truncate %d, 5xx %d (injected %d)",
		total, f[harness.FaultDelay], f[harness.FaultReset], f[harness.FaultTruncate], f[harness.FaultStatus], p.Injected())
}
