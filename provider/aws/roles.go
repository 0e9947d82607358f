package aws

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/secretmount/secretmount/provider"
)

// RoleAnnotation is the ServiceAccount annotation that names the IAM role (IRSA).
const RoleAnnotation = "eks.amazonaws.com/role-arn"

// RoleResolver returns the IAM role ARN of a ServiceAccount, "" when it has none.
type RoleResolver interface {
	RoleARN(ctx context.Context, namespace, serviceAccount string) (string, error)
}

// ServiceAccountRoles reads role annotations through an informer over ServiceAccounts,
// keeping only names and the role annotation in memory. A ServiceAccount the cache has
// not seen yet (created a moment ago) is read from the API server directly.
type ServiceAccountRoles struct {
	client   kubernetes.Interface
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	lister   corelisters.ServiceAccountLister
}

// NewServiceAccountRoles prepares the informer; Start runs it.
func NewServiceAccountRoles(client kubernetes.Interface, resync time.Duration) (*ServiceAccountRoles, error) {
	factory := informers.NewSharedInformerFactory(client, resync)
	sas := factory.Core().V1().ServiceAccounts()
	informer := sas.Informer()
	if err := informer.SetTransform(trimServiceAccount); err != nil {
		return nil, fmt.Errorf("set ServiceAccount transform: %w", err)
	}
	return &ServiceAccountRoles{client: client, factory: factory, informer: informer, lister: sas.Lister()}, nil
}

// Run starts the informer, which runs until ctx ends, and returns at once. Until the
// first list arrives, lookups read the API server directly.
func (r *ServiceAccountRoles) Run(ctx context.Context) { r.factory.Start(ctx.Done()) }

// Start runs the informer until ctx ends and waits for its first list.
func (r *ServiceAccountRoles) Start(ctx context.Context) error {
	r.Run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), r.informer.HasSynced) {
		return fmt.Errorf("ServiceAccount informer did not sync: %w", ctx.Err())
	}
	return nil
}

// RoleARN returns the eks.amazonaws.com/role-arn annotation of namespace/name.
func (r *ServiceAccountRoles) RoleARN(ctx context.Context, namespace, name string) (string, error) {
	sa, err := r.lister.ServiceAccounts(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		sa, err = r.client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("ServiceAccount %s/%s not found: %w", namespace, name, provider.ErrPermissionDenied)
	case err != nil:
		return "", fmt.Errorf("read ServiceAccount %s/%s: %w: %w", namespace, name, provider.ErrUnavailable, err)
	}
	return sa.Annotations[RoleAnnotation], nil
}

// trimServiceAccount drops everything the backend does not read, so a cluster's worth
// of ServiceAccounts costs little memory on every node.
func trimServiceAccount(obj any) (any, error) {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return obj, nil
	}
	trimmed := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name:            sa.Name,
		Namespace:       sa.Namespace,
		UID:             sa.UID,
		ResourceVersion: sa.ResourceVersion,
	}}
	if role, ok := sa.Annotations[RoleAnnotation]; ok {
		trimmed.Annotations = map[string]string{RoleAnnotation: role}
	}
	return trimmed, nil
}
