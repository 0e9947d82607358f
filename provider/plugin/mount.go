package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"sort"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// FetchFiles calls the provider's Mount with the request the upstream driver would
// send for the same mount, and returns its files once every path has been checked.
// Nothing is returned, and so nothing written, if any file is rejected.
func (c *Client) FetchFiles(ctx context.Context, plan *providerclass.Plan, id provider.Identity, req provider.MountRequest) (*provider.MountResult, error) {
	mreq, err := mountRequest(plan, id, req)
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", c.name, err)
	}
	client, err := c.clients.conn(c.name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.clients.opts.Timeout)
	defer cancel()
	resp, err := client.Mount(ctx, mreq)
	if err != nil {
		return nil, fromStatus(c.name, err)
	}
	if code := resp.GetError().GetCode(); code != "" {
		return nil, fmt.Errorf("provider %q failed the mount with error code %q: %w", c.name, code, provider.ErrUnavailable)
	}
	return mountResult(c.name, resp)
}

// mountRequest encodes a mount as the upstream driver does in NodePublishVolume: the
// attributes are the class parameters overlaid with the volume context, the pod's tokens
// included; secrets and permission are JSON.
func mountRequest(plan *providerclass.Plan, id provider.Identity, req provider.MountRequest) (*v1alpha1.MountRequest, error) {
	attrs := make(map[string]string, len(plan.Parameters)+len(req.Attributes)+1)
	maps.Copy(attrs, plan.Parameters)
	maps.Copy(attrs, req.Attributes)
	if attrs[attrTokens] == "" && len(id.Tokens) > 0 {
		tokens, err := encodeTokens(id.Tokens)
		if err != nil {
			return nil, err
		}
		attrs[attrTokens] = tokens
	}
	attributes, err := json.Marshal(attrs)
	if err != nil {
		return nil, fmt.Errorf("encoding attributes: %w", err)
	}
	// A nil map encodes as "null", which is what upstream sends without a secret ref.
	secrets, err := json.Marshal(req.Secrets)
	if err != nil {
		return nil, fmt.Errorf("encoding node publish secrets: %w", err)
	}
	mode := req.Permission
	if mode == 0 {
		mode = providerclass.DefaultFileMode
	}
	permission, err := json.Marshal(mode)
	if err != nil {
		return nil, fmt.Errorf("encoding permission: %w", err)
	}
	ids := make([]string, 0, len(req.CurrentVersions))
	for k := range req.CurrentVersions {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	var versions []*v1alpha1.ObjectVersion
	for _, k := range ids {
		versions = append(versions, &v1alpha1.ObjectVersion{Id: k, Version: req.CurrentVersions[k]})
	}
	return &v1alpha1.MountRequest{
		Attributes:           string(attributes),
		Secrets:              string(secrets),
		TargetPath:           req.TargetPath,
		Permission:           string(permission),
		CurrentObjectVersion: versions,
	}, nil
}

// mountResult checks and converts a provider's answer. Like upstream, a missing
// object_version list is an error; unlike upstream, a bad path fails the whole answer
// before anything could be written.
func mountResult(name string, resp *v1alpha1.MountResponse) (*provider.MountResult, error) {
	if resp.GetObjectVersion() == nil {
		return nil, fmt.Errorf("provider %q answered without object versions: %w", name, provider.ErrUnavailable)
	}
	out := &provider.MountResult{Versions: make(map[string]string, len(resp.GetObjectVersion()))}
	for _, v := range resp.GetObjectVersion() {
		out.Versions[v.GetId()] = v.GetVersion()
	}
	seen := make(map[string]bool, len(resp.GetFiles()))
	for i, f := range resp.GetFiles() {
		if err := checkFilePath(f.GetPath()); err != nil {
			return nil, fmt.Errorf("provider %q returned files[%d] with path %q: %v: %w", name, i, f.GetPath(), err, provider.ErrInvalid)
		}
		if seen[f.GetPath()] {
			return nil, fmt.Errorf("provider %q returned files[%d] with path %q twice: %w", name, i, f.GetPath(), provider.ErrInvalid)
		}
		seen[f.GetPath()] = true
		mode := f.GetMode()
		if mode < 0 || mode&^0o777 != 0 {
			return nil, fmt.Errorf("provider %q returned files[%d] (%q) with mode %#o, not a permission: %w", name, i, f.GetPath(), mode, provider.ErrInvalid)
		}
		out.Files = append(out.Files, providerclass.File{Path: f.GetPath(), Mode: os.FileMode(mode), Bytes: f.GetContents()})
	}
	return out, nil
}
