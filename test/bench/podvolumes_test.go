//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/test/csiclient"
)

// onePodVolumes is how many volumes of one class the one pod of onePodManyVolumes has.
func onePodVolumes() int {
	if os.Getenv("BENCH_QUICK") != "" {
		return 20
	}
	return 100
}

// onePodManyVolumes publishes many volumes of the guide's class for one pod at once, as
// kubelet does for a pod that mounts the class many times (or retries): each system gets
// a pod of its own and a ServiceAccount of its own. A failed publish is a figure here,
// not a test failure: the upstream driver records every mount of a pod and class in one
// SecretProviderClassPodStatus and loses the update race for most of them.
func onePodManyVolumes(t *testing.T, e *env, tab *table) {
	t.Helper()
	n := onePodVolumes()
	type result struct {
		ok       int
		wall     time.Duration
		ids, fet int
		firstErr string
	}
	res := map[string]result{}
	for _, s := range []*system{e.ours, e.up} {
		sa := "onepod-" + s.name
		e.api.CreateServiceAccount(t, e.ns, sa, map[string]string{aws.RoleAnnotation: "arn:aws:iam::123456789012:role/" + sa})
		pod := e.volumes(t, 1, classCNPG, sa)[0]
		podDir := filepath.Dir(filepath.Dir(filepath.Dir(pod.TargetPath))) // .../pods/<uid>/volumes
		vols := make([]csiclient.Volume, n)
		for i := range vols {
			vols[i] = pod
			vols[i].TargetPath = filepath.Join(podDir, "kubernetes.io~csi", fmt.Sprintf("secrets-%03d", i), "mount")
		}
		e.proxy.Take()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var ok atomic.Int64
		var mu sync.Mutex
		var firstErr string
		var published []csiclient.Volume
		var wg sync.WaitGroup
		start := time.Now()
		for _, v := range vols {
			wg.Go(func() {
				err := s.csi.Publish(ctx, v)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == "" {
						firstErr = err.Error()
					}
					return
				}
				ok.Add(1)
				published = append(published, v)
			})
		}
		wg.Wait()
		wall := time.Since(start)
		cancel()
		r := result{ok: int(ok.Load()), wall: wall, firstErr: firstErr}
		r.ids, r.fet = identityAndFetches(e.proxy.Take())
		res[s.name] = r
		unpublishAll(t, s, published)
	}
	o, u := res["ours"], res["upstream"]
	if o.ok != n {
		// Ours must mount every volume; a failure here is a bug, not a figure.
		t.Errorf("ours: %d of %d publishes of one pod's volumes failed, first: %s", n-o.ok, n, o.firstErr)
	}
	label := fmt.Sprintf("2 one pod, %d volumes of one class at once", n)
	tab.row(label+": publishes succeeded", float64(o.ok), float64(u.ok))
	tab.row(label+": wall ms", ms(o.wall), ms(u.wall))
	tab.row(label+": STS exchanges", float64(o.ids), float64(u.ids))
	tab.row(label+": Secrets Manager requests", float64(o.fet), float64(u.fet))
	if u.firstErr != "" {
		msg := u.firstErr
		if len(msg) > 160 {
			msg = msg[:160] + "..."
		}
		tab.note("upstream, one pod with %d volumes: %d failed; first error: %s", n, n-u.ok, strings.ReplaceAll(msg, "\n", " "))
	}
}
