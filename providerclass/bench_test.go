package providerclass

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkNewPlanRender plans and renders a 10-object AWS class, each object a JSON
// secret with two jmesPath extractions (30 files), as one mount does.
func BenchmarkNewPlanRender(b *testing.B) {
	var objects strings.Builder
	contents := make([]ObjectContent, 10)
	for i := range 10 {
		fmt.Fprintf(&objects, "- objectName: prod/app/secret-%d\n  objectType: secretsmanager\n  jmesPath:\n", i)
		fmt.Fprintf(&objects, "    - {path: username, objectAlias: user-%d}\n    - {path: db.password, objectAlias: password-%d}\n", i, i)
		contents[i] = ObjectContent{Bytes: fmt.Appendf(nil, `{"username":"user%d","db":{"password":"pw%d","port":5432}}`, i, i)}
	}
	spc := aws(objects.String(), "region", "us-east-1")
	mount := Mount{Namespace: "ns", PodName: "pod", ServiceAccount: "sa"}
	b.ReportAllocs()
	for b.Loop() {
		p, err := NewPlan(spc, mount)
		if err != nil {
			b.Fatal(err)
		}
		files, err := p.Render(contents)
		if err != nil || len(files) != 30 {
			b.Fatalf("render: %d files, %v", len(files), err)
		}
	}
}
