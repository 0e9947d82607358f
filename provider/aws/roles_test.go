package aws

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/secretmount/secretmount/provider"
)

func TestServiceAccountRoles(t *testing.T) {
	sa := func(ns, name string, annotations map[string]string) *corev1.ServiceAccount {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}}
	}
	client := fake.NewClientset(
		sa("app", "web", map[string]string{RoleAnnotation: "arn:aws:iam::1:role/web", "other": "dropped"}),
		sa("app", "plain", nil),
	)
	roles, err := NewServiceAccountRoles(client, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := roles.Start(ctx); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		ns, name, want string
		wantErr        error
	}{
		{"app", "web", "arn:aws:iam::1:role/web", nil},
		{"app", "plain", "", nil},
		{"other", "web", "", provider.ErrPermissionDenied},
	}
	for _, tc := range tests {
		got, err := roles.RoleARN(ctx, tc.ns, tc.name)
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("RoleARN(%s/%s) = %q, %v; want %q, %v", tc.ns, tc.name, got, err, tc.want, tc.wantErr)
		}
	}

	// Created after the informer synced, asked for before the watch delivers it: the
	// direct read answers.
	if _, err := client.CoreV1().ServiceAccounts("app").Create(ctx, sa("app", "new", map[string]string{RoleAnnotation: "arn:aws:iam::1:role/new"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := roles.RoleARN(ctx, "app", "new"); err != nil || got != "arn:aws:iam::1:role/new" {
		t.Errorf("RoleARN(app/new) = %q, %v", got, err)
	}

	cached, err := roles.lister.ServiceAccounts("app").Get("web")
	if err != nil {
		t.Fatal(err)
	}
	if len(cached.Annotations) != 1 {
		t.Errorf("cached ServiceAccount keeps %v; want only the role annotation", cached.Annotations)
	}
}
