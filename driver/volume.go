package driver

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// PublishedVolume is one volume this node has published: where it is mounted, for which
// pod and SecretProviderClass, and which object versions its files hold. It carries no
// secret value and no token, so it may be persisted, logged and handed to observers.
type PublishedVolume struct {
	VolumeID   string
	TargetPath string
	// Class is the SecretProviderClass, always in the pod's namespace.
	Class          types.NamespacedName
	Pod            PodRef
	ServiceAccount string
	// Provider is spec.provider of the class when the volume was last written.
	Provider string
	// MountGroup is the volume_mount_group kubelet asked for ("" for none).
	MountGroup string
	// Versions are the versions of the fetched objects, in plan order.
	Versions []ObjectVersion
	// UpdatedAt is when the files were last (re)written.
	UpdatedAt time.Time
}

// PodRef names the pod a volume was published for.
type PodRef struct {
	Namespace string
	Name      string
	UID       string
}

// ObjectVersion is the version of one planned object as the backend reported it.
type ObjectVersion struct {
	Field   string // the object's field path, e.g. "objects[0]"
	Name    string // objectName
	Version string
}

// Observer is told about content changes of published volumes; the sync controller is
// one. The driver calls it inline, under the volume's lock, after the files are on disk:
// implementations must not block (queue the work) and must not keep files beyond the
// call unless they need them, since files hold secret values.
type Observer interface {
	// Published is called after a publish or refresh that changed the volume's content,
	// including the first publish, and after the first republish of a volume that a
	// previous driver process published (its content may be unchanged), so observers can
	// rebuild their state after a restart.
	Published(v PublishedVolume, plan *providerclass.Plan, files []providerclass.File)
	// Unpublished is called after the volume was unmounted and forgotten.
	Unpublished(v PublishedVolume)
}

// identityOf is the identity of a volume without tokens, as recovered from its record.
func identityOf(v PublishedVolume) provider.Identity {
	return provider.Identity{Namespace: v.Pod.Namespace, ServiceAccount: v.ServiceAccount, PodName: v.Pod.Name, PodUID: v.Pod.UID}
}
