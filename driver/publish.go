package driver

import (
	"context"
	"errors"
	"fmt"
	"github.com/secretmount/secretmount/driver/atomicwriter"
	"io/fs"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/provider"
)

// tmpfsOptions keep a mounted secret from being executed or used as a device, and make
// the root readable (not world-writable, the tmpfs default) for non-root pods.
var tmpfsOptions = []string{"nosuid", "nodev", "noexec", "mode=0755"}

// publish makes the volume's target hold the class's current files. A first publish
// mounts and writes; a republish (kubelet's requiresRepublish, or a retry) re-fetches
// and rewrites only when something changed. On error a first publish leaves no mount
// and no content; a republish leaves the previous content.
func (d *Driver) publish(ctx context.Context, pr *publishRequest) error {
	unlock := d.locks.lock(pr.target)
	defer unlock()

	prev, known := d.table.get(pr.target)
	if known && prev.VolumeID != pr.volumeID {
		return status.Errorf(codes.AlreadyExists, "target %s already holds volume %s, not %s", pr.target, prev.VolumeID, pr.volumeID)
	}
	mreq := provider.MountRequest{Attributes: pr.attrs, Secrets: pr.secrets, TargetPath: pr.target}
	if known {
		mreq.CurrentVersions = versionMap(prev.Versions)
	}
	c, err := d.fetch(ctx, pr.class, pr.identity, mreq)
	if err != nil {
		if known {
			// The content stays as it was, but the fresh tokens kubelet just sent are
			// kept, so the next rotation tick can try with them.
			prev.identity, prev.attrs, prev.secrets = pr.identity, pr.attrs, pr.secrets
			d.table.put(prev)
		}
		return fmt.Errorf("volume %s: %w", pr.volumeID, err)
	}
	mounted, err := d.isMounted(pr.target)
	if err != nil {
		return fmt.Errorf("volume %s: %w", pr.volumeID, err)
	}
	changed := true
	switch {
	case !mounted:
		if err := d.mountAndWrite(pr, c); err != nil {
			return fmt.Errorf("volume %s: %w", pr.volumeID, err)
		}
	case atomicwriter.Same(pr.target, c.files, pr.gid):
		changed = false
	default:
		if err := atomicwriter.Write(pr.target, c.files, pr.gid); err != nil {
			return fmt.Errorf("volume %s: write files of SecretProviderClass %s: %w", pr.volumeID, pr.class, err)
		}
	}

	v := &volume{
		PublishedVolume: PublishedVolume{
			VolumeID:       pr.volumeID,
			TargetPath:     pr.target,
			Class:          pr.class,
			Pod:            PodRef{Namespace: pr.identity.Namespace, Name: pr.identity.PodName, UID: pr.identity.PodUID},
			ServiceAccount: pr.identity.ServiceAccount,
			Provider:       c.plan.Provider,
			MountGroup:     pr.group,
			Versions:       c.versions,
			UpdatedAt:      time.Now().UTC(),
		},
		identity: pr.identity,
		gid:      pr.gid,
		attrs:    pr.attrs,
		secrets:  pr.secrets,
	}
	if !changed && known {
		v.UpdatedAt = prev.UpdatedAt
	}
	d.table.put(v)
	if err := d.state.save(v.PublishedVolume); err != nil {
		// The mount is good; only recovery after a restart is weakened. Failing the
		// publish would keep the pod from starting for a bookkeeping problem.
		d.opts.Log.Error(err, "volume will not be recovered after a restart", "volume", pr.volumeID)
	}
	// Observers also hear of the first publish of a volume this process did not
	// publish itself (after a restart), so they can rebuild what they keep in memory.
	if changed || !known || prev.restored {
		d.table.notifyPublished(v.PublishedVolume, c.plan, c.files)
	}
	return nil
}

func (d *Driver) mountAndWrite(pr *publishRequest, c *content) error {
	created := false
	if _, err := os.Stat(pr.target); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(pr.target, 0o755); err != nil {
			return fmt.Errorf("create target %s: %w", pr.target, err)
		}
		created = true
	} else if err != nil {
		return fmt.Errorf("inspect target %s: %w", pr.target, err)
	}
	if err := d.opts.Mounter.Mount("tmpfs", pr.target, "tmpfs", tmpfsOptions); err != nil {
		if created {
			_ = os.Remove(pr.target)
		}
		return fmt.Errorf("mount tmpfs at %s: %w", pr.target, err)
	}
	if err := atomicwriter.Write(pr.target, c.files, pr.gid); err != nil {
		werr := fmt.Errorf("write files of SecretProviderClass %s: %w", pr.class, err)
		return errors.Join(werr, d.teardown(pr.target, created))
	}
	return nil
}

// unpublish unmounts the target, removes it and forgets the volume. It succeeds when
// the target is already gone, as CSI asks.
func (d *Driver) unpublish(volumeID, target string) error {
	unlock := d.locks.lock(target)
	defer unlock()
	prev, known := d.table.get(target)
	if err := d.teardown(target, true); err != nil {
		return fmt.Errorf("volume %s: %w", volumeID, err)
	}
	d.table.remove(target)
	if err := d.state.delete(target); err != nil {
		d.opts.Log.Error(err, "stale volume record left behind", "volume", volumeID)
	}
	if known {
		d.table.notifyUnpublished(prev.PublishedVolume)
	}
	return nil
}

// teardown unmounts every mount stacked on target, removes what the writer made and,
// if asked, the target folder itself. It never removes content it did not write.
func (d *Driver) teardown(target string, removeDir bool) error {
	for range 8 {
		mounted, err := d.isMounted(target)
		if err != nil {
			return err
		}
		if !mounted {
			break
		}
		if err := d.opts.Mounter.Unmount(target); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	if mounted, err := d.isMounted(target); err != nil || mounted {
		return errors.Join(err, fmt.Errorf("%s is still a mount point after unmounting", target))
	}
	if err := atomicwriter.Clear(target); err != nil {
		return fmt.Errorf("clear %s: %w", target, err)
	}
	if removeDir {
		if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove target %s: %w", target, err)
		}
	}
	return nil
}

func (d *Driver) isMounted(target string) (bool, error) {
	notMnt, err := d.opts.Mounter.IsLikelyNotMountPoint(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check mount point %s: %w", target, err)
	}
	return !notMnt, nil
}
