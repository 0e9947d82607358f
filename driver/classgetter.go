package driver

import (
	"context"
	"fmt"
	"maps"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
)

// ClassGetter returns a SecretProviderClass by namespace and name, or an error wrapping
// a NotFound when there is none. The driver asks only for the pod's own namespace.
type ClassGetter interface {
	GetClass(ctx context.Context, key types.NamespacedName) (*secretsstorev1.SecretProviderClass, error)
}

// CacheClassGetter serves SecretProviderClasses from an informer cache, so a publish
// reads memory, not the API server.
type CacheClassGetter struct {
	cache cache.Cache
}

var _ ClassGetter = (*CacheClassGetter)(nil)

// NewCacheClassGetter builds the informer cache; call Start before use.
func NewCacheClassGetter(cfg *rest.Config) (*CacheClassGetter, error) {
	scheme := runtime.NewScheme()
	if err := secretsstorev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register SecretProviderClass types: %w", err)
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: trimClass})
	if err != nil {
		return nil, fmt.Errorf("create SecretProviderClass cache: %w", err)
	}
	return &CacheClassGetter{cache: c}, nil
}

// Start runs the informers until ctx ends and waits for their first sync. It returns
// once synced; the informers stop with ctx.
func (g *CacheClassGetter) Start(ctx context.Context) error {
	if _, err := g.cache.GetInformer(ctx, &secretsstorev1.SecretProviderClass{}); err != nil {
		return fmt.Errorf("watch SecretProviderClasses: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- g.cache.Start(ctx) }()
	if !g.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("start SecretProviderClass cache: %w", err)
			}
		default:
		}
		return fmt.Errorf("SecretProviderClass cache did not sync: %w", ctx.Err())
	}
	return nil
}

// GetClass implements ClassGetter.
func (g *CacheClassGetter) GetClass(ctx context.Context, key types.NamespacedName) (*secretsstorev1.SecretProviderClass, error) {
	spc := &secretsstorev1.SecretProviderClass{}
	if err := g.cache.Get(ctx, key, spc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("SecretProviderClass %s: %w", key, errClassNotFound)
		}
		return nil, fmt.Errorf("get SecretProviderClass %s: %w", key, err)
	}
	return spc, nil
}

// lastApplied is the annotation kubectl apply keeps the whole applied object in.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimClass drops what a publish never reads from a cached SecretProviderClass: managed
// fields and kubectl's copy of the applied object. Every node caches every class of the
// cluster, and these two are often larger than the spec.
func trimClass(obj any) (any, error) {
	spc, ok := obj.(*secretsstorev1.SecretProviderClass)
	if !ok {
		return obj, nil
	}
	spc.ManagedFields = nil
	if _, ok := spc.Annotations[lastApplied]; ok {
		spc.Annotations = maps.Clone(spc.Annotations)
		delete(spc.Annotations, lastApplied)
	}
	return spc, nil
}
