//go:build integration

package smoke

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secretmount/secretmount/test/harness"
)

func TestPostgresSelectAndRoleLogin(t *testing.T) {
	pg := harness.SharedPostgres(t)
	ctx := context.Background()

	var one int
	if err := pg.Connect(t, pg.DSN).QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v; want 1", one, err)
	}

	// A quote in the password proves it reaches the server as written.
	const password = "it's-a-password"
	dsn := pg.CreateRole(t, "smoke_app", password)

	tests := []struct {
		name     string
		dsn      string
		wantUser string // empty: the login must be refused
	}{
		{name: "right password", dsn: dsn, wantUser: "smoke_app"},
		{name: "wrong password", dsn: pg.DSNFor("smoke_app", "not-"+password, "")},
		{name: "unknown role", dsn: pg.DSNFor("smoke_nobody", password, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, tt.dsn)
			if tt.wantUser == "" {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
					t.Fatalf("connect: err = %v, want SQLSTATE 28P01 (invalid_password)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect as smoke_app: %v", err)
			}
			defer conn.Close(ctx)
			var user string
			if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
				t.Fatalf("SELECT current_user: %v", err)
			}
			if user != tt.wantUser {
				t.Errorf("current_user = %q, want %q", user, tt.wantUser)
			}
		})
	}
}
