package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/secretmount/secretmount/provider"
)

// tokenServer answers TokenRequests at the wire and counts them per ServiceAccount. Each
// request is held until release is closed, so callers that come meanwhile overlap it.
type tokenServer struct {
	release chan struct{}

	mu       gosync.Mutex
	requests map[string]int // by namespace/name
}

func newTokenServer(t *testing.T) (*tokenServer, kubernetes.Interface) {
	t.Helper()
	s := &tokenServer{release: make(chan struct{}), requests: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /api/v1/namespaces/<ns>/serviceaccounts/<name>/token
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if r.Method != http.MethodPost || len(parts) != 7 || parts[4] != "serviceaccounts" || parts[6] != "token" {
			http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		s.mu.Lock()
		s.requests[parts[3]+"/"+parts[5]]++
		n := s.requests[parts[3]+"/"+parts[5]]
		s.mu.Unlock()
		<-s.release
		tr := authenticationv1.TokenRequest{
			TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenRequest"},
			Status: authenticationv1.TokenRequestStatus{
				Token:               fmt.Sprintf("token-%s-%s-%d", parts[3], parts[5], n),
				ExpirationTimestamp: metav1.NewTime(time.Now().Add(tokenTTL)),
			},
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&tr)
	}))
	t.Cleanup(srv.Close)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s, client
}

func (s *tokenServer) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[key]
}

// Several reconcile workers asking for the tokens of a few ServiceAccounts at once make
// one TokenRequest per ServiceAccount, and all callers of one get the same token.
func TestTokenRequesterSharesConcurrentRequests(t *testing.T) {
	tests := []struct {
		name            string
		serviceAccounts []string
		callersEach     int
	}{
		{"one ServiceAccount, eight workers", []string{"app"}, 8},
		{"three ServiceAccounts, eight workers each", []string{"a", "b", "c"}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, client := newTokenServer(t)
			r := NewTokenRequester(client)
			var started, done gosync.WaitGroup
			tokens := make([][]provider.Token, len(tt.serviceAccounts))
			errs := make(chan error, len(tt.serviceAccounts)*tt.callersEach)
			for i, sa := range tt.serviceAccounts {
				tokens[i] = make([]provider.Token, tt.callersEach)
				for j := range tt.callersEach {
					started.Add(1)
					done.Add(1)
					go func() {
						defer done.Done()
						started.Done()
						tok, err := r.Token(context.Background(), provider.Identity{Namespace: "ns", ServiceAccount: sa}, "sts.amazonaws.com")
						if err != nil {
							errs <- err
						}
						tokens[i][j] = tok
					}()
				}
			}
			started.Wait()
			// Every caller is running; let the held requests answer once each
			// ServiceAccount's first one has arrived.
			for _, sa := range tt.serviceAccounts {
				for srv.count("ns/"+sa) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			close(srv.release)
			done.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for i, sa := range tt.serviceAccounts {
				if n := srv.count("ns/" + sa); n != 1 {
					t.Errorf("ServiceAccount %s: %d TokenRequests, want 1", sa, n)
				}
				for j, tok := range tokens[i] {
					if tok.Token != tokens[i][0].Token || tok.Token == "" {
						t.Errorf("ServiceAccount %s caller %d got a different token than caller 0", sa, j)
					}
				}
			}
			// Later callers are served from the cache.
			if _, err := r.Token(context.Background(), provider.Identity{Namespace: "ns", ServiceAccount: tt.serviceAccounts[0]}, "sts.amazonaws.com"); err != nil {
				t.Fatal(err)
			}
			if n := srv.count("ns/" + tt.serviceAccounts[0]); n != 1 {
				t.Errorf("a cached token was requested again: %d TokenRequests", n)
			}
		})
	}
}

// A caller that gives up does not fail the others waiting on the same request.
func TestTokenRequesterCallerCancelLeavesOthers(t *testing.T) {
	srv, client := newTokenServer(t)
	r := NewTokenRequester(client)
	id := provider.Identity{Namespace: "ns", ServiceAccount: "app"}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := r.Token(ctx, id, "vault")
		first <- err
	}()
	for srv.count("ns/app") == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() {
		tok, err := r.Token(context.Background(), id, "vault")
		if err == nil && tok.Token == "" {
			err = fmt.Errorf("empty token")
		}
		second <- err
	}()
	cancel()
	if err := <-first; err == nil {
		t.Fatal("the cancelled caller got no error")
	}
	close(srv.release)
	if err := <-second; err != nil {
		t.Fatalf("the other caller failed: %v", err)
	}
	if n := srv.count("ns/app"); n != 1 {
		t.Errorf("%d TokenRequests, want 1", n)
	}
}
