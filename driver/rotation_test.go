package driver

import (
	"context"
	"fmt"
	"github.com/secretmount/secretmount/driver/atomicwriter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/test/csiclient"
)

func TestRefreshAllRewritesOnlyChangedVolumes(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("ns", "one", "a"))
	e.classes.put(awsClass("ns", "two", "b"))
	e.backend.set("a", "a1")
	e.backend.set("b", "b1")
	ctx := context.Background()
	va, vb := e.volume("ns", "one", 1), e.volume("ns", "two", 2)
	for _, v := range []csiclient.Volume{va, vb} {
		if err := e.client.Publish(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	linkB, _ := os.Readlink(filepath.Join(vb.TargetPath, atomicwriter.DataLink))

	e.backend.set("a", "a2")
	e.d.RefreshAll(ctx)

	if got := readMount(t, va.TargetPath)["a"]; got != "a2" {
		t.Errorf("a = %q after rotation, want a2", got)
	}
	if again, _ := os.Readlink(filepath.Join(vb.TargetPath, atomicwriter.DataLink)); again != linkB {
		t.Errorf("unchanged volume was rewritten")
	}
	if p, _ := e.obs.counts(); p != 3 {
		t.Errorf("observer told %d times, want 3 (two publishes, one change)", p)
	}
	vols := e.d.Volumes()
	if vols[0].Versions[0].Version == "" || vols[0].Versions[0].Name != "a" {
		t.Errorf("versions not recorded: %+v", vols[0].Versions)
	}
}

func TestRefreshFailureKeepsContent(t *testing.T) {
	for _, failure := range []error{
		fmt.Errorf("object a: %w", provider.ErrUnavailable),
		fmt.Errorf("object a: %w", provider.ErrPermissionDenied),
	} {
		t.Run(failure.Error(), func(t *testing.T) {
			e := newEnv(t, nil)
			e.classes.put(awsClass("ns", "c", "a"))
			e.backend.set("a", "good")
			v := e.volume("ns", "c", 1)
			if err := e.client.Publish(context.Background(), v); err != nil {
				t.Fatal(err)
			}
			e.backend.fail(failure)
			e.d.RefreshAll(context.Background())
			if got := readMount(t, v.TargetPath); len(got) != 1 || got["a"] != "good" {
				t.Errorf("after a failed refresh the mount holds %v, want a=good", got)
			}
			e.backend.fail(nil)
			e.backend.set("a", "better")
			e.d.RefreshAll(context.Background())
			if got := readMount(t, v.TargetPath)["a"]; got != "better" {
				t.Errorf("after recovery a = %q, want better", got)
			}
		})
	}
}

func TestRefreshSkipsVolumesWithoutLiveToken(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("ns", "c", "a"))
	e.backend.set("a", "v1")
	v := e.volume("ns", "c", 1)
	v.Tokens = map[string]csiclient.Token{"sts.amazonaws.com": {Token: "t", ExpiresAt: time.Now().Add(-time.Minute)}}
	if err := e.client.Publish(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	calls := e.backend.calls.Load()
	e.backend.set("a", "v2")
	e.d.RefreshAll(context.Background())
	if e.backend.calls.Load() != calls {
		t.Errorf("a volume with only expired tokens was refreshed")
	}
	if got := readMount(t, v.TargetPath)["a"]; got != "v1" {
		t.Errorf("a = %q, want v1", got)
	}
}

func TestRotationPollerRuns(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.RotationEnabled = true
		o.RotationPollInterval = 20 * time.Millisecond
	})
	e.classes.put(awsClass("ns", "c", "a"))
	e.backend.set("a", "v1")
	v := e.volume("ns", "c", 1)
	if err := e.client.Publish(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	e.backend.set("a", "v2")
	// Bounded wait for the poller (not a timing assertion: it only bounds the test).
	for i := 0; i < 500 && readMount(t, v.TargetPath)["a"] != "v2"; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := readMount(t, v.TargetPath)["a"]; got != "v2" {
		t.Errorf("poller did not rotate: a = %q", got)
	}
}

func TestRestartRecoversMountedVolumes(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("ns", "c", "a"))
	e.backend.set("a", "v1")
	kept, gone := e.volume("ns", "c", 1), e.volume("ns", "c", 2)
	for _, v := range []csiclient.Volume{kept, gone} {
		if err := e.client.Publish(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	// The second volume's mount disappears while the driver is down.
	if err := e.mounter.Unmount(gone.TargetPath); err != nil {
		t.Fatal(err)
	}
	// Records never hold tokens or values.
	recs, _ := os.ReadDir(filepath.Join(e.dir, "state"))
	for _, r := range recs {
		b, _ := os.ReadFile(filepath.Join(e.dir, "state", r.Name()))
		for _, s := range []string{"token-of-pod", "v1"} {
			if strings.Contains(string(b), s) {
				t.Errorf("record %s holds %q: %s", r.Name(), s, b)
			}
		}
	}

	d2, err := New(Options{
		Endpoint: "unix://" + filepath.Join(e.dir, "csi2.sock"), NodeID: "node-1",
		StateDir: filepath.Join(e.dir, "state"), Classes: e.classes, Providers: e.d.opts.Providers,
		Mounter: e.mounter, Log: e.d.opts.Log,
	})
	if err != nil {
		t.Fatal(err)
	}
	d2.restore()
	vols := d2.Volumes()
	if len(vols) != 1 || vols[0].TargetPath != kept.TargetPath || vols[0].Pod.UID != "uid-1" || vols[0].Class.String() != "ns/c" {
		t.Fatalf("recovered %+v, want only the still-mounted volume", vols)
	}
	// Without tokens the recovered volume is not refreshed...
	calls := e.backend.calls.Load()
	d2.RefreshAll(context.Background())
	if e.backend.calls.Load() != calls {
		t.Errorf("recovered volume refreshed without a token")
	}
	// ...until kubelet's republish brings them back; then rotation resumes.
	srvCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d2.Run(srvCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	c2, err := csiclient.Dial(d2.opts.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	readyCtx, readyCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer readyCancel()
	if err := c2.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	published, _ := e.obs.counts()
	rec2 := &recorder{}
	d2.AddObserver(rec2)
	// The first republish after the restart is told to observers though nothing
	// changed (they rebuild their state from it); the next unchanged one is not.
	for range 2 {
		if err := c2.Publish(context.Background(), kept); err != nil {
			t.Fatal(err)
		}
		if p, _ := rec2.counts(); p != 1 {
			t.Errorf("after republish the restarted driver told observers %d times, want 1", p)
		}
	}
	if p, _ := e.obs.counts(); p != published {
		t.Errorf("first driver's observer was told about the second driver's volume")
	}
	e.backend.set("a", "v2")
	d2.RefreshAll(context.Background())
	if got := readMount(t, kept.TargetPath)["a"]; got != "v2" {
		t.Errorf("after republish and refresh a = %q, want v2", got)
	}
}

func TestFailedRepublishKeepsContentAndTakesFreshTokens(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("ns", "c", "a"))
	e.backend.set("a", "good")
	v := e.volume("ns", "c", 1)
	v.Tokens = map[string]csiclient.Token{"sts.amazonaws.com": {Token: "old", ExpiresAt: time.Now().Add(time.Hour)}}
	if err := e.client.Publish(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	e.backend.fail(fmt.Errorf("object a: %w", provider.ErrUnavailable))
	v.Tokens = map[string]csiclient.Token{"sts.amazonaws.com": {Token: "fresh", ExpiresAt: time.Now().Add(2 * time.Hour)}}
	if err := e.client.Publish(context.Background(), v); err == nil {
		t.Fatal("republish during an outage succeeded")
	}
	if got := readMount(t, v.TargetPath); len(got) != 1 || got["a"] != "good" {
		t.Errorf("after a failed republish the mount holds %v", got)
	}
	e.backend.fail(nil)
	e.d.RefreshAll(context.Background())
	seen, _ := e.backend.identity.Load("uid-1")
	if tok := seen.(provider.Identity).Tokens["sts.amazonaws.com"].Token; tok != "fresh" {
		t.Errorf("refresh used token %q, want the fresh one", tok)
	}
}
