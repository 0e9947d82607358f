//go:build integration

package reliability

import (
	"context"
	"fmt"
	"sort"
	gosync "sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// generations knows the exact content of every generation: the files of a volume and,
// for each synced Secret, the values of its keys. A Secret's keys come from different
// backend objects, and moto takes a new generation one object at a time, so a
// SecretSync pass between two writes rightly sees two generations; each object's keys
// must still be of one generation.
type generations struct {
	files map[int]map[string]string
	// secrets: Secret name → the key groups of one backend object each → generation →
	// key → value.
	secrets map[string][]map[int]map[string]string
}

func (e *awsFaultEnv) generations(t *testing.T, upTo int, syncName string, syncKeys map[string]string) *generations {
	t.Helper()
	objectOf := map[string]int{} // file → plan object
	for i, o := range e.plan.Objects {
		if o.File != "" {
			objectOf[o.File] = i
		}
		for _, x := range o.Extractions {
			objectOf[x.File] = i
		}
	}
	keyFiles := map[string]map[string]string{syncName: syncKeys} // Secret → key → file
	for _, so := range e.plan.SecretObjects {
		keyFiles[so.SecretName] = map[string]string{}
		for _, d := range so.Data {
			keyFiles[so.SecretName][d.Key] = d.ObjectName
		}
	}
	g := &generations{files: map[int]map[string]string{}, secrets: map[string][]map[int]map[string]string{}}
	for gen := 1; gen <= upTo; gen++ {
		pg, s3 := awsValues(gen)
		g.files[gen] = renderedFiles(t, e.plan, pg, s3)
	}
	for name, keys := range keyFiles {
		groups := make([]map[int]map[string]string, len(e.plan.Objects))
		for key, file := range keys {
			obj, ok := objectOf[file]
			if !ok {
				t.Fatalf("Secret %s key %s: file %s is no planned file", name, key, file)
			}
			if groups[obj] == nil {
				groups[obj] = map[int]map[string]string{}
			}
			for gen, files := range g.files {
				if groups[obj][gen] == nil {
					groups[obj][gen] = map[string]string{}
				}
				groups[obj][gen][key] = files[file]
			}
		}
		for _, grp := range groups {
			if grp != nil {
				g.secrets[name] = append(g.secrets[name], grp)
			}
		}
	}
	return g
}

// fileGen is the generation whose files dir holds exactly, or 0.
func (g *generations) fileGen(dir string) int {
	got, err := topFiles(dir)
	if err != nil {
		return 0
	}
	for gen, want := range g.files {
		if diffFiles(got, want) == "" {
			return gen
		}
	}
	return 0
}

// secretGens is, for each backend object a Secret's keys come from, the generation its
// keys hold (0 when they hold no one generation's values), and whether the Secret has
// no other keys.
func (g *generations) secretGens(name string, data map[string][]byte) ([]int, bool) {
	groups := g.secrets[name]
	gens := make([]int, len(groups))
	keys := 0
	for i, grp := range groups {
		for gen, want := range grp {
			same := true
			for k, v := range want {
				if string(data[k]) != v {
					same = false
					break
				}
			}
			if same {
				gens[i] = max(gens[i], gen)
			}
		}
		keys += len(grp[1])
	}
	return gens, keys == len(data)
}

// secretAt tells whether every object of the Secret is at generation gen.
func (g *generations) secretAt(name string, data map[string][]byte, gen int) bool {
	gens, exact := g.secretGens(name, data)
	for _, got := range gens {
		if got != gen {
			return false
		}
	}
	return exact
}

// secretWatch reads the synced Secrets over and over while the ticks run and checks that
// each read finds each object's keys at one generation, never older than the one read
// before, and no other keys.
type secretWatch struct {
	mu       gosync.Mutex
	reads    int
	last     map[string][]int
	problems []string
}

func (w *secretWatch) problem(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.problems = appendProblem(w.problems, fmt.Sprintf(format, args...))
}

func (w *secretWatch) run(ctx context.Context, c client.Client, ns string, g *generations, names []string) {
	for ctx.Err() == nil {
		for _, name := range names {
			var s corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
				if ctx.Err() == nil {
					w.problem("get Secret %s: %v", name, err)
				}
				continue
			}
			gens, exact := g.secretGens(name, s.Data)
			w.mu.Lock()
			w.reads++
			prev := w.last[name]
			if prev == nil {
				prev = make([]int, len(gens))
			}
			next := make([]int, len(gens))
			for i, gen := range gens {
				next[i] = max(prev[i], gen)
				switch {
				case gen == 0:
					w.problems = appendProblem(w.problems, fmt.Sprintf("Secret %s: the keys of object %d hold no one generation (keys %v)", name, i, secretKeys(&s)))
				case gen < prev[i]:
					w.problems = appendProblem(w.problems, fmt.Sprintf("Secret %s: object %d went back from generation %d to %d", name, i, prev[i], gen))
				}
			}
			if !exact {
				w.problems = appendProblem(w.problems, fmt.Sprintf("Secret %s has keys %v, not just the synced ones", name, secretKeys(&s)))
			}
			w.last[name] = next
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func appendProblem(list []string, p string) []string {
	if len(list) < 10 {
		return append(list, p)
	}
	return list
}

// secretKeys names a Secret's keys, never its values.
func secretKeys(s *corev1.Secret) []string {
	out := make([]string, 0, len(s.Data))
	for k := range s.Data {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
