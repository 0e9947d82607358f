package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/mount-utils"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
)

// fakeClasses is a ClassGetter over a map, standing in for the informer cache.
type fakeClasses struct {
	mu      sync.Mutex
	classes map[types.NamespacedName]*secretsstorev1.SecretProviderClass
}

func (f *fakeClasses) GetClass(_ context.Context, key types.NamespacedName) (*secretsstorev1.SecretProviderClass, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	spc, ok := f.classes[key]
	if !ok {
		return nil, fmt.Errorf("SecretProviderClass %s: %w", key, errClassNotFound)
	}
	return spc.DeepCopy(), nil
}

func (f *fakeClasses) put(spc *secretsstorev1.SecretProviderClass) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.classes == nil {
		f.classes = map[types.NamespacedName]*secretsstorev1.SecretProviderClass{}
	}
	f.classes[types.NamespacedName{Namespace: spc.Namespace, Name: spc.Name}] = spc
}

// fakeBackend is a provider registered under "aws" that serves object contents from a
// map by object name; err, when set, fails every fetch.
type fakeBackend struct {
	mu       sync.Mutex
	values   map[string]string
	err      error
	delay    time.Duration
	calls    atomic.Int64
	lastID   provider.Identity
	identity sync.Map // pod UID → identity seen
}

func (f *fakeBackend) set(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.values == nil {
		f.values = map[string]string{}
	}
	f.values[name] = value
}

func (f *fakeBackend) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeBackend) Fetch(ctx context.Context, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	f.calls.Add(1)
	f.identity.Store(id.PodUID, id)
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		v, ok := f.values[o.Name]
		if !ok {
			return nil, fmt.Errorf("object %s: %w", o.Name, provider.ErrNotFound)
		}
		sum := sha256.Sum256([]byte(v))
		out[i] = providerclass.ObjectContent{Bytes: []byte(v), Version: hex.EncodeToString(sum[:8])}
	}
	return out, nil
}

// awsClass is an AWS-dialect class whose objects are the given names, each written
// under its own name with "/" translated to "_".
func awsClass(ns, name string, objects ...string) *secretsstorev1.SecretProviderClass {
	var b strings.Builder
	for _, o := range objects {
		fmt.Fprintf(&b, "- objectName: %q\n  objectType: secretsmanager\n", o)
	}
	return &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: secretsstorev1.SecretProviderClassSpec{
			Provider:   "aws",
			Parameters: map[string]string{"objects": b.String(), "region": "eu-west-1"},
		},
	}
}

// recorder is an Observer that keeps what it was told (names and versions only).
type recorder struct {
	mu          sync.Mutex
	published   []PublishedVolume
	unpublished []PublishedVolume
	files       [][]string
}

func (r *recorder) Published(v PublishedVolume, _ *providerclass.Plan, files []providerclass.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, v)
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Path
	}
	r.files = append(r.files, names)
}

func (r *recorder) Unpublished(v PublishedVolume) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unpublished = append(r.unpublished, v)
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.published), len(r.unpublished)
}

// env is a driver served on a temp socket with fakes behind it.
type env struct {
	d       *Driver
	client  *csiclient.Client
	classes *fakeClasses
	backend *fakeBackend
	mounter *mount.FakeMounter
	obs     *recorder
	dir     string
}

func newEnv(t testing.TB, mutate func(*Options)) *env {
	t.Helper()
	e := &env{classes: &fakeClasses{}, backend: &fakeBackend{}, mounter: mount.NewFakeMounter(nil), obs: &recorder{}, dir: t.TempDir()}
	reg := provider.NewRegistry()
	reg.Register("aws", e.backend)
	opts := Options{
		Endpoint:  "unix://" + filepath.Join(e.dir, "csi.sock"),
		NodeID:    "node-1",
		StateDir:  filepath.Join(e.dir, "state"),
		Classes:   e.classes,
		Providers: reg,
		Mounter:   e.mounter,
		Log:       logr.Discard(),
	}
	if mutate != nil {
		mutate(&opts)
	}
	e.start(t, opts)
	return e
}

func (e *env) start(t testing.TB, opts Options) {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	d.AddObserver(e.obs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	c, err := csiclient.Dial(opts.Endpoint)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatalf("driver did not come up: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	e.d, e.client = d, c
}

// volume is a kubelet-like volume of pod n in namespace ns using class.
func (e *env) volume(ns, class string, n int) csiclient.Volume {
	return csiclient.Volume{
		TargetPath: filepath.Join(e.dir, "pods", fmt.Sprintf("pod-%d", n), "volumes", "secrets"),
		Pod:        csiclient.Pod{Namespace: ns, Name: fmt.Sprintf("pod-%d", n), UID: fmt.Sprintf("uid-%d", n), ServiceAccount: "app"},
		Class:      class,
		Tokens:     map[string]csiclient.Token{"sts.amazonaws.com": {Token: "token-of-pod", ExpiresAt: time.Now().Add(time.Hour)}},
	}
}

func (e *env) mountCount() int {
	n := 0
	for _, a := range e.mounter.GetLog() {
		if a.Action == mount.FakeActionMount {
			n++
		}
	}
	return n
}
