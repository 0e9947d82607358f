package driver

import (
	"context"
	"fmt"
	"github.com/secretmount/secretmount/driver/atomicwriter"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// refreshParallelism bounds how many volumes one tick refreshes at once: enough that
// identical fetches of many volumes overlap and coalesce in the registry, few enough not
// to flood a backend.
const refreshParallelism = 8

// rotate refreshes every published volume each poll interval until ctx ends.
func (d *Driver) rotate(ctx context.Context) {
	t := time.NewTicker(d.opts.RotationPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.RefreshAll(ctx)
		}
	}
}

// RefreshAll re-fetches every published volume that holds a live token, rewriting and
// telling observers only where a version or a byte changed. A failed refresh leaves the
// volume's content as it was. It is what one rotation tick does.
func (d *Driver) RefreshAll(ctx context.Context) {
	sem := make(chan struct{}, refreshParallelism)
	var wg sync.WaitGroup
	for _, v := range d.table.list() {
		if !v.liveToken(time.Now()) {
			d.metrics.observeRefresh("skipped")
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(target, volumeID string) {
			defer func() { <-sem; wg.Done() }()
			changed, err := d.refresh(ctx, target)
			switch {
			case err != nil:
				d.metrics.observeRefresh(status.Code(toStatus(err)).String())
				d.opts.Log.Error(err, "rotation refresh failed; content kept", "volume", volumeID)
			case changed:
				d.metrics.observeRefresh("changed")
				d.opts.Log.Info("rotation updated volume", "volume", volumeID)
			default:
				d.metrics.observeRefresh("unchanged")
			}
		}(v.TargetPath, v.VolumeID)
	}
	wg.Wait()
}

// refresh is a republish with the identity kubelet last sent, without mounting: a
// volume that is no longer mounted is not brought back.
func (d *Driver) refresh(ctx context.Context, target string) (bool, error) {
	unlock := d.locks.lock(target)
	defer unlock()
	v, ok := d.table.get(target)
	if !ok || !v.liveToken(time.Now()) {
		return false, nil
	}
	c, err := d.fetch(ctx, v.Class, v.identity, v.mountRequest())
	if err != nil {
		return false, err
	}
	mounted, err := d.isMounted(target)
	if err != nil {
		return false, err
	}
	if !mounted {
		return false, fmt.Errorf("%s is no longer a mount point", target)
	}
	if atomicwriter.Same(target, c.files, v.gid) {
		return false, nil
	}
	if err := atomicwriter.Write(target, c.files, v.gid); err != nil {
		return false, fmt.Errorf("write files of SecretProviderClass %s: %w", v.Class, err)
	}
	v.Versions = c.versions
	v.Provider = c.plan.Provider
	v.UpdatedAt = time.Now().UTC()
	d.table.put(v)
	if err := d.state.save(v.PublishedVolume); err != nil {
		d.opts.Log.Error(err, "volume record not updated", "volume", v.VolumeID)
	}
	d.table.notifyPublished(v.PublishedVolume, c.plan, c.files)
	return true, nil
}

// restore rebuilds the table from the state records whose target is still mounted, and
// drops the others. Restored volumes have no tokens, so rotation skips them until
// kubelet's next republish brings fresh ones.
func (d *Driver) restore() {
	records, errs := d.state.load()
	for _, err := range errs {
		d.opts.Log.Error(err, "skipping volume record")
	}
	for _, rec := range records {
		mounted, err := d.isMounted(rec.TargetPath)
		if err != nil || !mounted {
			if derr := d.state.delete(rec.TargetPath); derr != nil {
				d.opts.Log.Error(derr, "stale volume record left behind", "volume", rec.VolumeID)
			}
			continue
		}
		gid := atomicwriter.NoGroup
		if rec.MountGroup != "" {
			if g, err := strconv.ParseUint(rec.MountGroup, 10, 31); err == nil {
				gid = int(g)
			}
		}
		d.table.put(&volume{PublishedVolume: rec, gid: gid, identity: identityOf(rec), restored: true})
		d.opts.Log.Info("recovered published volume", "volume", rec.VolumeID, "class", rec.Class.String(), "pod", rec.Pod.Namespace+"/"+rec.Pod.Name)
	}
}
