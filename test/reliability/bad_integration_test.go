//go:build integration

package reliability

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/mount-utils"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

const (
	caseNamespace = "team-a"
	casePod       = "web-0"
	casePodUID    = "0b6b3f2e-1111-4c1d-9d7e-3a6c2f0d7e01"
	caseSA        = "web"
)

// TestBadInputCorpus runs every CSI and provider case of test/testdata/bad through its boundary and
// checks the gRPC code, that the message names the field, that the call returned (no
// panic took the server down), that the tree around the target is unchanged and that
// no mount is left.
func TestBadInputCorpus(t *testing.T) {
	harness.RequireRoot(t)
	var cases []badCase
	for _, c := range loadCorpus(t) {
		if c.Boundary != boundarySync {
			cases = append(cases, c)
		}
	}
	e := newEnv(t, nil) // the driver's own mounter (mount(2)), as it ships
	conns := map[string]v1alpha1.CSIDriverProviderClient{}
	for _, name := range []string{"aws", "vault"} {
		conn, err := grpc.NewClient("unix://"+filepath.Join(e.sockets, "p", name+".sock"), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithChainUnaryInterceptor(harness.RecordGRPCErrors))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		conns[name] = v1alpha1.NewCSIDriverProviderClient(conn)
	}
	t.Cleanup(func() {
		for p := range tmpfsMountsUnder(t, e.root) {
			_ = mount.New("").Unmount(p)
		}
	})
	counts := map[string]int{}
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			volumes := filepath.Join(e.root, "pods", fmt.Sprintf("pod-%d", i), "volumes")
			if err := os.MkdirAll(volumes, 0o750); err != nil {
				t.Fatal(err)
			}
			harness.RecordSecretValue(t, caseValues(c)...)
			before := snapshot(t, e.root)
			var err error
			switch c.Boundary {
			case boundaryCSI:
				err = runCSI(t, e, c, volumes)
			case boundaryProvider:
				err = runProvider(t, conns, c, filepath.Join(volumes, "secrets"))
			}
			checkStatus(t, err, c.Want)
			checkNoValue(t, err, c)
			if after := snapshot(t, e.root); !sameTree(before, after) {
				t.Errorf("the tree under the pods folder changed:\n%s", diffTree(before, after))
			}
			if left := tmpfsMountsUnder(t, e.root); len(left) != 0 {
				t.Errorf("mounts left behind: %v", left)
			}
			counts[c.Boundary]++
		})
	}
	// The servers still answer after every case: a panic would have stopped them.
	if _, err := e.csi.Identity.Probe(context.Background(), &csi.ProbeRequest{}); err != nil {
		t.Fatalf("driver does not answer after the corpus: %v", err)
	}
	t.Logf("bad-input cases run: %v", counts)

	// No token or file content of any case appears in what the driver logged.
	lines := e.logs.all()
	values := 0
	for _, c := range cases {
		for _, v := range caseValues(c) {
			values++
			for _, line := range lines {
				if strings.Contains(line, v) {
					t.Errorf("case %s: a value of the case appears in the driver log", c.Name)
					break
				}
			}
		}
	}
	t.Logf("%d log lines scanned for %d case values", len(lines), values)
	if len(lines) == 0 {
		t.Error("the driver logged nothing; the leak scan saw no input")
	}
}

func checkStatus(t *testing.T, err error, want wantSpec) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %s naming %q", want.Code, want.Field)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error is not a gRPC status: %v", err)
	}
	if st.Code() != codeByName[want.Code] {
		t.Errorf("code %s, want %s: %s", st.Code(), want.Code, st.Message())
	}
	if !strings.Contains(st.Message(), want.Field) {
		t.Errorf("message does not name %q: %s", want.Field, st.Message())
	}
}

// checkNoValue fails when the error quotes a token or a file content of the case:
// messages name fields, never values.
func checkNoValue(t *testing.T, err error, c badCase) {
	t.Helper()
	if err == nil {
		return
	}
	msg := status.Convert(err).Message()
	t.Logf("%s: %s", status.Code(err), msg)
	for _, v := range caseValues(c) {
		if strings.Contains(msg, v) {
			t.Errorf("message quotes a value of the case")
		}
	}
}

// caseValues are the secrets a case sends: its tokens and the contents its provider
// answers with, those long enough to be told apart from ordinary words.
func caseValues(c badCase) []string {
	var values []string
	for _, tok := range c.Tokens {
		values = append(values, tok.Token)
	}
	if c.Request.RawTokens != "" {
		values = append(values, c.Request.RawTokens)
	}
	for _, f := range c.answerFiles() {
		b, _ := f.bytes()
		values = append(values, string(b))
	}
	out := values[:0]
	for _, v := range values {
		if len(v) >= 8 {
			out = append(out, v)
		}
	}
	return out
}

func spcOf(c badCase) *secretsstorev1.SecretProviderClass {
	if c.Class == nil {
		return nil
	}
	return &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: caseNamespace, Name: "c"},
		Spec:       secretsstorev1.SecretProviderClassSpec{Provider: secretsstorev1.Provider(c.Class.Provider), Parameters: c.Class.parameters()},
	}
}

func (c badCase) className() string {
	if c.ClassName != nil {
		return *c.ClassName
	}
	return "c"
}

func (c badCase) tokens() map[string]csiclient.Token {
	if c.Tokens == nil {
		return nil
	}
	out := map[string]csiclient.Token{}
	for aud, tok := range c.Tokens {
		exp := time.Now().Add(time.Hour)
		switch tok.Expires {
		case "", "future":
		case "past":
			exp = time.Now().Add(-time.Hour)
		default:
			if ts, err := time.Parse(time.RFC3339, tok.Expires); err == nil {
				exp = ts
			}
		}
		out[aud] = csiclient.Token{Token: tok.Token, ExpiresAt: exp}
	}
	return out
}

func runCSI(t *testing.T, e *env, c badCase, volumes string) error {
	t.Helper()
	e.classes.set(spcOf(c))
	e.evil.set(c.Answer)
	v := csiclient.Volume{
		TargetPath: filepath.Join(volumes, "secrets"+c.Request.TargetSuffix),
		Pod:        csiclient.Pod{Namespace: caseNamespace, Name: casePod, UID: casePodUID, ServiceAccount: caseSA},
		Class:      c.className(),
		Tokens:     c.tokens(),
		MountGroup: c.Request.MountGroup,
		ReadWrite:  c.Request.ReadWrite,
	}
	req, err := v.PublishRequest()
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range c.Context {
		req.VolumeContext[k] = val
	}
	for _, k := range c.Drop {
		delete(req.VolumeContext, k)
	}
	if c.Request.RawTokens != "" {
		req.VolumeContext["csi.storage.k8s.io/serviceAccount.tokens"] = c.Request.RawTokens
	}
	if c.Request.VolumeID != nil {
		req.VolumeId = *c.Request.VolumeID
	}
	if c.Request.TargetPath != nil {
		req.TargetPath = *c.Request.TargetPath
	}
	switch {
	case c.Request.NoCapability:
		req.VolumeCapability = nil
	case c.Request.Block:
		req.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = e.csi.Node.NodePublishVolume(ctx, req)
	return err
}

func runProvider(t *testing.T, conns map[string]v1alpha1.CSIDriverProviderClient, c badCase, target string) error {
	t.Helper()
	backend := "aws"
	attrs := map[string]string{}
	if c.Class != nil {
		backend = c.Class.Provider
		for k, v := range c.Class.parameters() {
			attrs[k] = v
		}
	}
	client, ok := conns[backend]
	if !ok {
		t.Fatalf("no provider server for %q", backend)
	}
	v := csiclient.Volume{
		TargetPath: target,
		Pod:        csiclient.Pod{Namespace: caseNamespace, Name: casePod, UID: casePodUID, ServiceAccount: caseSA},
		Class:      c.className(),
		Tokens:     c.tokens(),
	}
	vc, err := v.VolumeContext()
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range vc {
		attrs[k] = val
	}
	for k, val := range c.Context {
		attrs[k] = val
	}
	for _, k := range c.Drop {
		delete(attrs, k)
	}
	if c.Request.RawTokens != "" {
		attrs["csi.storage.k8s.io/serviceAccount.tokens"] = c.Request.RawTokens
	}
	encoded, err := json.Marshal(attrs)
	if err != nil {
		t.Fatal(err)
	}
	req := &v1alpha1.MountRequest{Attributes: string(encoded), Secrets: "null", TargetPath: target, Permission: "420"}
	if c.Mount.Attributes != nil {
		req.Attributes = *c.Mount.Attributes
	}
	if c.Mount.Secrets != nil {
		req.Secrets = *c.Mount.Secrets
	}
	if c.Mount.Permission != nil {
		req.Permission = *c.Mount.Permission
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = client.Mount(ctx, req)
	return err
}

// entry is what a snapshot keeps of one path: type, mode and a content digest.
type entry struct {
	mode fs.FileMode
	sum  string
}

func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: info.Mode()}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			e.sum = hex.EncodeToString(s[:])
		}
		out[p] = e
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

func sameTree(a, b map[string]entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func diffTree(a, b map[string]entry) string {
	var lines []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			lines = append(lines, "- "+k)
		} else if w != v {
			lines = append(lines, "~ "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			lines = append(lines, "+ "+k)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// tmpfsMountsUnder lists the tmpfs mount points under dir with their options, from
// /proc/self/mountinfo.
func tmpfsMountsUnder(t *testing.T, dir string) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		f1, f2 := strings.Fields(pre), strings.Fields(post)
		if len(f1) < 6 || len(f2) < 3 || f2[0] != "tmpfs" {
			continue
		}
		mp := unescapeMount(f1[4])
		if strings.HasPrefix(mp, dir+"/") {
			out[mp] = f1[5] + " " + f2[2]
		}
	}
	return out
}

// unescapeMount undoes the octal escapes of space, tab, newline and backslash.
func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
