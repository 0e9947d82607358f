package sync

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/providerclass"
)

// MountSync is the driver's Observer: it keeps the secretObjects Secrets of published
// volumes in step with their files. Published and Unpublished only record and queue;
// workers write.
type MountSync struct {
	writer  *Writer
	classes client.Reader // SecretProviderClasses, for volumes published before a restart
	events  eventRecorder
	metrics *Metrics
	log     logr.Logger
	queue   workqueue.TypedRateLimitingInterface[mountItem]

	mu      gosync.Mutex
	secrets map[types.NamespacedName]*mountedSecret
	volumes map[string][]types.NamespacedName // volume ID → the Secrets its class syncs
	// orphanVolumes are unpublished volumes this process never saw published.
	orphanVolumes map[string]driver.PublishedVolume
}

var _ driver.Observer = (*MountSync)(nil)

// mountItem is one unit of queued work: a Secret to bring in step, or an unpublished
// volume this process never saw published (it was published before a restart), whose
// class must be read to learn which Secrets to release.
type mountItem struct {
	secret types.NamespacedName
	volume string
}

// mountedSecret is what this node wants of one Secret.
type mountedSecret struct {
	content *secretContent       // latest wanted content; nil if not known here
	dirty   bool                 // content not yet written
	users   map[string]podRef    // volume ID → its pod, the local users
	added   map[types.UID]bool   // pods whose ownerReference is on the Secret
	release map[types.UID]podRef // pods whose ownerReference must go
}

// NewMountSync returns a MountSync. classes reads SecretProviderClasses; events records
// on pods.
func NewMountSync(writer *Writer, classes client.Reader, events eventRecorder, metrics *Metrics, log logr.Logger) *MountSync {
	return &MountSync{
		writer: writer, classes: classes, events: events, metrics: metrics, log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[mountItem](500*time.Millisecond, 2*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[mountItem]{Name: "secretmount-mount-sync"}),
		secrets: map[types.NamespacedName]*mountedSecret{},
		volumes: map[string][]types.NamespacedName{},
	}
}

func (m *MountSync) entry(key types.NamespacedName) *mountedSecret {
	st, ok := m.secrets[key]
	if !ok {
		st = &mountedSecret{users: map[string]podRef{}, added: map[types.UID]bool{}, release: map[types.UID]podRef{}}
		m.secrets[key] = st
	}
	return st
}

// Published records the volume's Secrets and queues their writes. It never blocks on the
// API server. The files' bytes are copied into the wanted Secrets only.
func (m *MountSync) Published(v driver.PublishedVolume, plan *providerclass.Plan, files []providerclass.File) {
	pod := podRef{Namespace: v.Pod.Namespace, Name: v.Pod.Name, UID: types.UID(v.Pod.UID)}
	fm := fileMap(files)
	var keys []types.NamespacedName
	contents := map[types.NamespacedName]*secretContent{}
	for _, so := range plan.SecretObjects {
		key := types.NamespacedName{Namespace: pod.Namespace, Name: so.SecretName}
		c, err := mountContent(pod.Namespace, so, fm)
		if err != nil {
			m.warn(pod, key, "SecretObjectInvalid", err)
			continue
		}
		keys = append(keys, key)
		contents[key] = c
	}

	m.mu.Lock()
	for _, old := range m.volumes[v.VolumeID] {
		if _, still := contents[old]; !still { // the class no longer syncs it
			m.dropUserLocked(old, v.VolumeID)
		}
	}
	m.volumes[v.VolumeID] = keys
	for key, c := range contents {
		st := m.entry(key)
		st.content, st.dirty = c, true
		st.users[v.VolumeID] = pod
		delete(st.release, pod.UID)
	}
	m.mu.Unlock()
	for _, key := range keys {
		m.queue.Add(mountItem{secret: key})
	}
}

// Unpublished queues the release of the volume's pod from its Secrets.
func (m *MountSync) Unpublished(v driver.PublishedVolume) {
	m.mu.Lock()
	keys, known := m.volumes[v.VolumeID]
	delete(m.volumes, v.VolumeID)
	for _, key := range keys {
		m.dropUserLocked(key, v.VolumeID)
	}
	m.mu.Unlock()
	if !known {
		m.mu.Lock()
		m.orphanLocked(v)
		m.mu.Unlock()
		m.queue.Add(mountItem{volume: v.VolumeID})
	}
}

// dropUserLocked removes one volume from a Secret's local users, and releases its pod
// unless another volume of the same pod still uses the Secret.
func (m *MountSync) dropUserLocked(key types.NamespacedName, volumeID string) {
	st, ok := m.secrets[key]
	if !ok {
		return
	}
	pod, ok := st.users[volumeID]
	if !ok {
		return
	}
	delete(st.users, volumeID)
	for _, other := range st.users {
		if other.UID == pod.UID {
			m.queue.Add(mountItem{secret: key})
			return
		}
	}
	st.release[pod.UID] = pod
	m.queue.Add(mountItem{secret: key})
}

// orphanLocked holds an unpublished volume whose Secrets are not known here yet.
func (m *MountSync) orphanLocked(v driver.PublishedVolume) {
	if m.orphanVolumes == nil {
		m.orphanVolumes = map[string]driver.PublishedVolume{}
	}
	m.orphanVolumes[v.VolumeID] = v
}

// Run processes the queue with workers until ctx ends.
func (m *MountSync) Run(ctx context.Context, workers int) error {
	var wg gosync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for m.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	m.queue.ShutDown()
	wg.Wait()
	return nil
}

func (m *MountSync) next(ctx context.Context) bool {
	item, shutdown := m.queue.Get()
	if shutdown {
		return false
	}
	defer m.queue.Done(item)
	var err error
	if item.volume != "" {
		err = m.resolveOrphan(ctx, item.volume)
	} else {
		err = m.syncSecret(ctx, item.secret)
	}
	if err != nil {
		m.log.Info("mount sync failed; will retry", "item", item.String(), "error", err.Error())
		m.queue.AddRateLimited(item)
		return true
	}
	m.queue.Forget(item)
	return true
}

func (i mountItem) String() string {
	if i.volume != "" {
		return "volume " + i.volume
	}
	return "secret " + i.secret.String()
}

// resolveOrphan reads the class of a volume unpublished before this process saw it
// published and queues the release of its pod from the class's Secrets.
func (m *MountSync) resolveOrphan(ctx context.Context, volumeID string) error {
	m.mu.Lock()
	v, ok := m.orphanVolumes[volumeID]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	var spc secretsstorev1.SecretProviderClass
	if err := m.classes.Get(ctx, v.Class, &spc); err != nil {
		if apierrors.IsNotFound(err) {
			// The class is gone: nothing says which Secrets to release; the garbage
			// collector removes them when the pod goes.
			m.mu.Lock()
			delete(m.orphanVolumes, volumeID)
			m.mu.Unlock()
			return nil
		}
		return fmt.Errorf("failed to read SecretProviderClass %s of unpublished volume %s: %w", v.Class, volumeID, err)
	}
	pod := podRef{Namespace: v.Pod.Namespace, Name: v.Pod.Name, UID: types.UID(v.Pod.UID)}
	var keys []types.NamespacedName
	m.mu.Lock()
	delete(m.orphanVolumes, volumeID)
	for _, so := range spc.Spec.SecretObjects {
		if so == nil || so.SecretName == "" {
			continue
		}
		key := types.NamespacedName{Namespace: pod.Namespace, Name: so.SecretName}
		st := m.entry(key)
		stillUsed := false
		for _, u := range st.users {
			stillUsed = stillUsed || u.UID == pod.UID
		}
		if !stillUsed {
			st.release[pod.UID] = pod
		}
		keys = append(keys, key)
	}
	m.mu.Unlock()
	for _, key := range keys {
		m.queue.Add(mountItem{secret: key})
	}
	return nil
}

// syncSecret brings one Secret in step with what this node wants: data first, then the
// ownerReferences of local pods, then releases (which may delete the Secret).
func (m *MountSync) syncSecret(ctx context.Context, key types.NamespacedName) error {
	m.mu.Lock()
	st, ok := m.secrets[key]
	if !ok {
		m.mu.Unlock()
		return nil
	}
	content := st.content
	dirty := st.dirty && content != nil
	var add, release []podRef
	var anyPod podRef
	for _, p := range st.users {
		anyPod = p
		if !st.added[p.UID] {
			add = append(add, p)
		}
	}
	for _, p := range st.release {
		release = append(release, p)
	}
	m.mu.Unlock()

	if dirty {
		start := time.Now()
		result, err := m.writer.apply(ctx, content)
		reason := ""
		if err != nil {
			reason = writeReason(err)
		}
		m.metrics.observe(sourceMount, result, reason, time.Since(start).Seconds())
		if err != nil {
			m.warn(anyPod, key, reason, err)
			if errors.Is(err, errNotOwned) {
				m.mu.Lock()
				if st.content == content {
					st.dirty = false // nothing changes until someone annotates the Secret
				}
				m.mu.Unlock()
				return nil
			}
			return err
		}
		if result != resultUnchanged {
			m.log.Info("secret synced from mount", "secret", key.String(), "result", string(result))
		}
		m.mu.Lock()
		if st.content == content {
			st.dirty = false
		}
		m.mu.Unlock()
	}
	for _, p := range add {
		if err := m.writer.addPodOwner(ctx, key.Namespace, key.Name, p); err != nil {
			if apierrors.IsNotFound(err) && content == nil {
				continue // not written here yet; the next publish writes it
			}
			return err
		}
		m.mu.Lock()
		st.added[p.UID] = true
		m.mu.Unlock()
	}
	for _, p := range release {
		deleted, err := m.writer.releasePodOwner(ctx, key.Namespace, key.Name, p)
		if err != nil {
			return err
		}
		if deleted {
			m.log.Info("secret deleted after its last pod", "secret", key.String(), "pod", p.Namespace+"/"+p.Name)
		}
		m.mu.Lock()
		if cur, ok := st.release[p.UID]; ok && cur == p {
			delete(st.release, p.UID)
			delete(st.added, p.UID)
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	if len(st.users) == 0 && len(st.release) == 0 && m.secrets[key] == st {
		delete(m.secrets, key)
	}
	m.mu.Unlock()
	return nil
}

// warn records a Warning event on the pod: the Secret and the reason, never a value.
func (m *MountSync) warn(pod podRef, key types.NamespacedName, reason string, err error) {
	if m.events == nil || pod.Name == "" {
		return
	}
	obj := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	m.events.Eventf(obj, corev1.EventTypeWarning, reason, "secret %s not synced: %v", key, err)
}
