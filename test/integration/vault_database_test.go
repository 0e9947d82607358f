//go:build integration

package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/harness"
)

// TestVaultDatabaseLeases mounts dynamic PostgreSQL credentials from Vault's database
// engine: they log in, rotation polls within the lease reuse them (no new Vault lease),
// and once the lease cannot be renewed new credentials are minted and log in.
func TestVaultDatabaseLeases(t *testing.T) {
	e := startVaultEnv(t)
	cfg := e.setupDatabase(t)

	// The backend's clock is moved by the test to reach the renewal point of the lease
	// without waiting; Vault's own clock is real.
	clock := &testClock{now: time.Now()}
	b, err := vault.New(vault.Options{
		DefaultAddress: e.vault.Addr,
		Keys:           vault.StaticKey("0123456789abcdef0123456789abcdef"),
		CoalesceWindow: -1, // every Fetch is a rotation poll that reaches the backend
		Now:            clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := vaultPlan(t, "cnpg-system", map[string]string{"roleName": "db-app", "objects": `
- {objectName: username, secretPath: database/creds/app, secretKey: username}
- {objectName: password, secretPath: database/creds/app, secretKey: password}`})
	id := e.identity(t, "cnpg-system", "db-sa")

	first := fetch(t, b, p, id)
	assertLogin(t, cfg, first)
	if n := e.leaseCount(t); n != 1 {
		t.Fatalf("leases after the first mount: %d, want 1", n)
	}
	for i := range 10 {
		clock.advance(3 * time.Minute)
		if got := fetch(t, b, p, id); got["username"] != first["username"] || got["password"] != first["password"] {
			t.Fatalf("poll %d: credentials changed within the lease", i+1)
		}
	}
	if n := e.leaseCount(t); n != 1 {
		t.Fatalf("leases after ten polls: %d, want 1 (no new credentials)", n)
	}

	// Past the renew point the lease is renewed in Vault, and still no new one appears.
	clock.advance(15 * time.Minute)
	if got := fetch(t, b, p, id); got["username"] != first["username"] {
		t.Fatalf("credentials changed on a successful renewal")
	}
	if n := e.leaseCount(t); n != 1 {
		t.Fatalf("leases after renewal: %d, want 1", n)
	}

	// Revoked, the lease can no longer be renewed: the next renewal point mints new
	// credentials, and those log in.
	e.write(t, "sys/leases/revoke-prefix/database/creds/app", nil)
	clock.advance(45 * time.Minute)
	next := fetch(t, b, p, id)
	if next["username"] == first["username"] {
		t.Fatalf("credentials were not replaced after the lease was revoked")
	}
	assertLogin(t, cfg, next)
	if n := e.leaseCount(t); n != 1 {
		t.Fatalf("live leases after re-minting: %d, want 1", n)
	}
}

// setupDatabase starts PostgreSQL and Vault's database engine on it: role "app" at
// database/creds/app (1h leases), readable by ServiceAccount cnpg-system/db-sa through
// Vault role "db-app". It returns the superuser's connection settings.
func (e *vaultEnv) setupDatabase(t *testing.T) *pgx.ConnConfig {
	t.Helper()
	pg := harness.StartPostgres(t)
	cfg, err := pgx.ParseConfig(pg.DSN)
	if err != nil {
		t.Fatalf("postgres DSN: %v", err)
	}

	e.write(t, "sys/mounts/database", map[string]any{"type": "database"})
	e.write(t, "database/config/pg", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"allowed_roles":  []string{"app"},
		"connection_url": fmt.Sprintf("postgresql://{{username}}:{{password}}@%s:%d/%s?sslmode=disable", cfg.Host, cfg.Port, cfg.Database),
		"username":       cfg.User,
		"password":       cfg.Password,
	})
	e.write(t, "database/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`},
		"default_ttl":         "1h",
		"max_ttl":             "24h",
	})
	e.write(t, "sys/policies/acl/db-app", map[string]any{"policy": `path "database/creds/app" { capabilities = ["read"] }`})
	e.write(t, "auth/kubernetes/role/db-app", map[string]any{
		"bound_service_account_names": []string{"db-sa"}, "bound_service_account_namespaces": []string{"cnpg-system"},
		"policies": []string{"db-app"}, "ttl": "24h",
	})
	e.api.CreateServiceAccount(t, "cnpg-system", "db-sa", nil)
	return cfg
}

// leaseCount lists the live leases of database/creds/app through sys/leases/lookup.
func (e *vaultEnv) leaseCount(t *testing.T) int {
	t.Helper()
	s, err := e.root.Logical().List("sys/leases/lookup/database/creds/app/")
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	if s == nil || s.Data == nil {
		return 0
	}
	keys, _ := s.Data["keys"].([]any)
	return len(keys)
}

func assertLogin(t *testing.T, admin *pgx.ConnConfig, files map[string]string) {
	t.Helper()
	cfg := admin.Copy()
	cfg.User, cfg.Password = files["username"], files["password"]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("mounted credentials of role %q do not log in: %v", files["username"], err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 as %q: %v", files["username"], err)
	}
}

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
