package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

func TestParameterStoreContent(t *testing.T) {
	env := newTestEnv(t, nil)
	f := env.fake
	f.putParam("us-east-1", "/app/plain", "String", "plain value")
	f.putParam("us-east-1", "/app/secure", "SecureString", "decrypted\nvalue")
	f.putParam("us-east-1", "/app/list", "StringList", "a,b, c")
	f.putParam("us-east-1", "/app/versioned", "String", "one", "blue")
	f.putParam("us-east-1", "/app/versioned", "String", "two", "green")
	f.putParam("us-east-1", "/app/versioned", "String", "three")

	objects := []providerclass.Object{
		parameterObject("/app/plain"),
		parameterObject("/app/secure"),
		parameterObject("/app/list"),
		{Name: "/app/versioned", Type: typeParameter, Version: "2"},
		{Name: "/app/versioned", Type: typeParameter, VersionLabel: "blue"},
		parameterObject("/app/versioned"),
		{Name: "arn:aws:ssm:us-east-1:123456789012:parameter/app/plain", Type: typeParameter},
	}
	got := mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, objects...), identity("app", "web"))
	want := []struct{ value, version string }{
		{"plain value", "1"}, {"decrypted\nvalue", "1"}, {"a,b, c", "1"},
		{"two", "2"}, {"one", "1"}, {"three", "3"}, {"plain value", "1"},
	}
	for i, w := range want {
		if string(got[i].Bytes) != w.value || got[i].Version != w.version {
			t.Errorf("object %d (%s) = %q version %q, want %q version %q", i, objects[i].Name, got[i].Bytes, got[i].Version, w.value, w.version)
		}
	}
	// The three /app/versioned selectors cannot share a batch: SSM answers each with
	// the bare name.
	if n := f.count("GetParameters"); n != 3 {
		t.Errorf("GetParameters calls = %d, want 3", n)
	}
}

func TestParameterStoreBatchesOfTen(t *testing.T) {
	env := newTestEnv(t, nil)
	var objects []providerclass.Object
	for i := range 23 {
		name := fmt.Sprintf("/many/p%02d", i)
		env.fake.putParam("us-east-1", name, []string{"String", "SecureString", "StringList"}[i%3], "value-"+name)
		objects = append(objects, parameterObject(name))
	}
	got := mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, objects...), identity("app", "web"))
	for i, o := range objects {
		if string(got[i].Bytes) != "value-"+o.Name {
			t.Errorf("object %d = %q", i, got[i].Bytes)
		}
	}
	if n := env.fake.count("GetParameters"); n != 3 {
		t.Errorf("GetParameters calls = %d, want 3 for 23 parameters", n)
	}
}

func TestParameterStoreNotFound(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putParam("us-east-1", "/there", "String", "v")
	plan := awsPlan(providerclass.AWSParameters{}, parameterObject("/there"), parameterObject("/gone"),
		providerclass.Object{Name: "/there", Type: typeParameter, Version: "9"})
	_, err := env.backend.Fetch(context.Background(), plan, identity("app", "web"))
	if !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{`"/gone"`, "objects[1]", `"/there:9"`, "objects[2]", "us-east-1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestParameterStoreFailover(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putParam("us-east-1", "/p", "String", "primary")
	env.fake.putParam("us-west-2", "/p-backup", "String", "backup")
	env.fake.failWith("GetParameters@us-east-1", 500, "InternalServerError")
	obj := parameterObject("/p")
	obj.Failover = &providerclass.FailoverObject{Name: "/p-backup"}
	got := mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{Region: "us-east-1", FailoverRegion: "us-west-2"}, obj), identity("app", "web"))
	if string(got[0].Bytes) != "backup" {
		t.Errorf("got %q, want the failover region's value", got[0].Bytes)
	}
}

func TestParameterBatchesKeepNamesUnique(t *testing.T) {
	f := &fetch{regions: []string{"r1"}, plan: awsPlan(providerclass.AWSParameters{})}
	var idx []int
	for i := range 25 {
		name := fmt.Sprintf("/p%d", i%12) // 25 objects, 12 names
		f.plan.Objects = append(f.plan.Objects, providerclass.Object{Name: name, Type: typeParameter, Version: fmt.Sprint(i)})
		idx = append(idx, i)
	}
	batches := f.parameterBatches(idx)
	seen := 0
	for _, batch := range batches {
		if len(batch) > parameterBatch {
			t.Errorf("batch of %d", len(batch))
		}
		names := map[string]bool{}
		for _, i := range batch {
			if names[f.plan.Objects[i].Name] {
				t.Errorf("name %s twice in one batch", f.plan.Objects[i].Name)
			}
			names[f.plan.Objects[i].Name] = true
			seen++
		}
	}
	if seen != 25 {
		t.Errorf("batched %d objects, want 25", seen)
	}
}
