package provider

import (
	"context"
	"os"

	"github.com/secretmount/secretmount/providerclass"
)

// FileProvider is a Provider that makes the files of a mount itself, as an external
// provider plugin does: its plan has no Objects, so Fetch+Render cannot describe it.
//
// The driver checks for it after Registry.Get: when the provider is a FileProvider it
// calls FetchFiles instead of Fetch and plan.Render, and writes MountResult.Files with
// its atomic writer (the paths are already validated, but a writer validates anyway).
type FileProvider interface {
	Provider
	FetchFiles(ctx context.Context, plan *providerclass.Plan, id Identity, req MountRequest) (*MountResult, error)
}

// MountRequest is what a FileProvider needs beyond the plan and the identity: the mount
// as kubelet described it.
type MountRequest struct {
	// Attributes is the CSI volume context as kubelet sent it (secretProviderClass,
	// csi.storage.k8s.io/pod.*, csi.storage.k8s.io/serviceAccount.*).
	Attributes map[string]string
	// Secrets are the nodePublishSecretRef contents kubelet sent, if any.
	Secrets map[string]string
	// TargetPath is the folder the files will be written to.
	TargetPath string
	// Permission is the default file mode; zero means providerclass.DefaultFileMode.
	Permission os.FileMode
	// CurrentVersions are the object versions of the content already mounted (id →
	// version), empty on a first publish.
	CurrentVersions map[string]string
}

// MountResult is the files a FileProvider made and the versions of their objects.
type MountResult struct {
	// Files are relative, validated paths; none escapes the target and none repeats.
	Files []providerclass.File
	// Versions identify the content per object id; they change when content changes.
	Versions map[string]string
}
