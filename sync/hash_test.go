package sync

import (
	"strings"
	"testing"
)

func TestSyncHash(t *testing.T) {
	base := func() (hashInputs, *secretContent) {
		return hashInputs{SyncUID: "uid-1", SyncGeneration: 1, ClassUID: "spc-1", ClassGeneration: 3},
			&secretContent{Type: "Opaque", Labels: map[string]string{"a": "b"}, Annotations: map[string]string{},
				Data: map[string][]byte{"password": []byte("hunter2")}}
	}
	in, c := base()
	h := syncHash(in, c)
	if h2 := syncHash(base()); h2 != h {
		t.Fatalf("not deterministic: %s != %s", h, h2)
	}
	if strings.Contains(h, "hunter2") || len(h) != 64 {
		t.Fatalf("hash %q", h)
	}
	changes := map[string]func(*hashInputs, *secretContent){
		"value":       func(_ *hashInputs, c *secretContent) { c.Data["password"] = []byte("hunter3") },
		"key":         func(_ *hashInputs, c *secretContent) { c.Data = map[string][]byte{"pw": []byte("hunter2")} },
		"type":        func(_ *hashInputs, c *secretContent) { c.Type = "kubernetes.io/basic-auth" },
		"label added": func(_ *hashInputs, c *secretContent) { c.Labels["cnpg.io/reload"] = "true" },
		"label to annot": func(_ *hashInputs, c *secretContent) {
			c.Labels = map[string]string{}
			c.Annotations = map[string]string{"a": "b"}
		},
		"force":     func(in *hashInputs, _ *secretContent) { in.ForceSynchronization = "now" },
		"class gen": func(in *hashInputs, _ *secretContent) { in.ClassGeneration++ },
		"sync gen":  func(in *hashInputs, _ *secretContent) { in.SyncGeneration++ },
		"key uid":   func(in *hashInputs, _ *secretContent) { in.SyncUID = "uid-2" },
		"boundary":  func(_ *hashInputs, c *secretContent) { c.Data = map[string][]byte{"passwordh": []byte("unter2")} },
	}
	for name, change := range changes {
		in, c := base()
		change(&in, c)
		if syncHash(in, c) == h {
			t.Errorf("%s: hash did not change", name)
		}
	}
}
