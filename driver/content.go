package driver

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// content is what one fetch produced for a volume: the plan, the files to write and the
// versions they came from. Files hold secret values; content never leaves the process.
type content struct {
	plan     *providerclass.Plan
	files    []providerclass.File
	versions []ObjectVersion
}

// fetch plans the class for the identity, fetches through the registry and renders the
// files. Every backend call runs under the provider timeout.
func (d *Driver) fetch(ctx context.Context, class types.NamespacedName, id provider.Identity, req provider.MountRequest) (*content, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.ProviderTimeout)
	defer cancel()

	spc, err := d.opts.Classes.GetClass(ctx, class)
	if err != nil {
		return nil, err
	}
	plan, err := providerclass.NewPlan(spc, providerclass.Mount{
		Namespace:      id.Namespace,
		PodName:        id.PodName,
		PodUID:         id.PodUID,
		ServiceAccount: id.ServiceAccount,
	})
	if err != nil {
		return nil, err
	}
	backend, err := d.opts.Providers.Get(plan.Provider)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: %w", class, err)
	}
	// An external provider gets the class as written and authenticates by its own means,
	// even when the class is in a built-in dialect (the upstream Vault provider requests
	// its own token when kubelet sent none), so only built-in backends need the token.
	if fp, ok := backend.(provider.FileProvider); ok {
		return d.fetchFiles(ctx, fp, plan, id, req)
	}
	if err := checkTokens(plan, id, time.Now()); err != nil {
		return nil, err
	}
	contents, err := backend.Fetch(ctx, plan, id)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: fetch from provider %q: %w", class, plan.Provider, err)
	}
	if len(contents) != len(plan.Objects) {
		return nil, fmt.Errorf("SecretProviderClass %s: provider %q returned %d objects for %d planned", class, plan.Provider, len(contents), len(plan.Objects))
	}
	files, err := plan.Render(contents)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: %w", class, err)
	}
	versions := make([]ObjectVersion, len(plan.Objects))
	for i, o := range plan.Objects {
		versions[i] = ObjectVersion{Field: o.Field, Name: o.Name, Version: contents[i].Version}
	}
	return &content{plan: plan, files: files, versions: versions}, nil
}

// fetchFiles asks an external provider for the files themselves; its plan has no
// objects to render.
func (d *Driver) fetchFiles(ctx context.Context, fp provider.FileProvider, plan *providerclass.Plan, id provider.Identity, req provider.MountRequest) (*content, error) {
	res, err := fp.FetchFiles(ctx, plan, id, req)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s: fetch from provider %q: %w", plan.Class, plan.Provider, err)
	}
	ids := make([]string, 0, len(res.Versions))
	for k := range res.Versions {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	versions := make([]ObjectVersion, len(ids))
	for i, k := range ids {
		versions[i] = ObjectVersion{Field: k, Name: k, Version: res.Versions[k]}
	}
	return &content{plan: plan, files: res.Files, versions: versions}, nil
}

// versionMap is the id → version map of what a volume holds, for external providers.
func versionMap(vs []ObjectVersion) map[string]string {
	m := make(map[string]string, len(vs))
	for _, v := range vs {
		m[v.Name] = v.Version
	}
	return m
}
