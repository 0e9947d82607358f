package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KeySource supplies the HMAC key that object versions are computed with. The key must
// stay the same across restarts, or every version changes on restart.
type KeySource interface {
	Key(ctx context.Context) ([]byte, error)
}

// StaticKey is a fixed key (tests, or a key provided from a file).
type StaticKey []byte

// Key returns k.
func (k StaticKey) Key(context.Context) ([]byte, error) {
	if len(k) < minKeyLen {
		return nil, fmt.Errorf("version key is %d bytes, want at least %d", len(k), minKeyLen)
	}
	return k, nil
}

const (
	minKeyLen = 32
	// SecretKeyField is the data key of the version key in its Secret.
	SecretKeyField = "key"
)

// SecretKeySource keeps the key in a Kubernetes Secret the driver owns: read if it
// exists, created with a random key otherwise. Concurrent creators (one per node) settle
// on whichever Secret was created first. The key is cached after the first success.
type SecretKeySource struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string

	mu  sync.Mutex
	key []byte
}

// Key returns the key, creating its Secret on first use.
func (s *SecretKeySource) Key(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	ref := s.Namespace + "/" + s.Name
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	sec, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		key := make([]byte, minKeyLen)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("version key for Secret %s: %w", ref, err)
		}
		sec, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      s.Name,
				Namespace: s.Namespace,
				Labels:    map[string]string{"app.kubernetes.io/managed-by": "secretmount"},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{SecretKeyField: key},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			sec, err = secrets.Get(ctx, s.Name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("version key Secret %s: %w", ref, err)
	}
	key := sec.Data[SecretKeyField]
	if len(key) < minKeyLen {
		return nil, errors.New("version key Secret " + ref + ": data." + SecretKeyField + " is missing or shorter than 32 bytes")
	}
	s.key = key
	return key, nil
}
