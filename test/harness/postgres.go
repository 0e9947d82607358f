package harness

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	postgresTimeout = 2 * time.Minute
	// PostgresSuperuser is the superuser initdb creates.
	PostgresSuperuser = "postgres"
)

// Postgres is a running PostgreSQL 15 cluster in a temp folder, listening on a loopback
// port only, with password (SCRAM) authentication over TCP.
type Postgres struct {
	// Host and Port are where the server listens (Host is 127.0.0.1).
	Host string
	Port int
	// DSN is a connection URL for PostgresSuperuser, e.g. for Vault's database engine.
	DSN string
	// SuperuserPassword is PostgresSuperuser's password.
	SuperuserPassword string

	inst *instance
}

func (p *Postgres) instanceOf() *instance { return p.inst }

// DSNFor returns a connection URL for user with password to database ("postgres" when
// empty).
func (p *Postgres) DSNFor(user, password, database string) string {
	if database == "" {
		database = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     p.Host + ":" + strconv.Itoa(p.Port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Connect opens a connection with dsn and closes it when the test ends.
func (p *Postgres) Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("failed to connect to PostgreSQL at %s:%d: %v", p.Host, p.Port, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CreateRole creates a login role with password and returns a DSN that logs in as it.
func (p *Postgres) CreateRole(t testing.TB, name, password string) string {
	t.Helper()
	conn := p.Connect(t, p.DSN)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	// CREATE ROLE takes no bind parameters; the password is quoted as a literal.
	stmt := "CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " LOGIN PASSWORD " + quoteLiteral(password)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("failed to create PostgreSQL role %s: %v", name, err)
	}
	return p.DSNFor(name, password, "")
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings is on, as
// it has been by default since PostgreSQL 9.1, so only quotes need doubling).
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// StartPostgres starts a PostgreSQL cluster for this test and stops it when the test
// ends. Prefer SharedPostgres with unique role and database names.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p, err := startPostgres()
	if err != nil {
		failStart(t, "Postgres", err)
	}
	t.Cleanup(func() {
		if err := p.inst.stop(); err != nil {
			t.Errorf("failed to stop PostgreSQL: %v", err)
		}
	})
	p.inst.logOnFailure(t)
	return p
}

func startPostgres() (*Postgres, error) {
	return retryPortClash(startPostgresOnce)
}

func startPostgresOnce() (*Postgres, error) {
	initdb, err := executable(filepath.Join(PostgresBinDir(), "initdb"), "PostgreSQL initdb")
	if err != nil {
		return nil, err
	}
	server, err := executable(filepath.Join(PostgresBinDir(), "postgres"), "PostgreSQL server")
	if err != nil {
		return nil, err
	}
	cred, uid, gid, err := postgresUser()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	password, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	inst, err := newInstance("postgres")
	if err != nil {
		return nil, err
	}
	p, err := bootPostgres(inst, initdb, server, cred, uid, gid, port, password)
	if err != nil {
		return nil, inst.failStartup(err)
	}
	return p, nil
}

// postgresUser is who runs initdb and the server: initdb refuses root, so a root test
// runs them as the postgres system user; anyone else runs them as themselves.
func postgresUser() (cred *syscall.Credential, uid, gid int, err error) {
	if os.Geteuid() != 0 {
		return nil, os.Geteuid(), os.Getegid(), nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, unavailablef("no postgres system user to run PostgreSQL as (root may not): %v; %s", err, setupHint)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

func bootPostgres(inst *instance, initdb, server string, cred *syscall.Credential, uid, gid, port int, password string) (*Postgres, error) {
	// The temp folder is 0700; the server's user must own it to create its data and
	// socket folders there.
	if err := os.Chown(inst.dir, uid, gid); err != nil {
		return nil, fmt.Errorf("failed to give %s to uid %d: %w", inst.dir, uid, err)
	}
	pwfile := inst.path("pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write the superuser password file: %w", err)
	}
	if err := os.Chown(pwfile, uid, gid); err != nil {
		return nil, fmt.Errorf("failed to give the password file to uid %d: %w", uid, err)
	}
	data := inst.path("data")
	if err := runInitdb(inst, initdb, cred, data, pwfile); err != nil {
		return nil, err
	}
	if err := os.Remove(pwfile); err != nil {
		return nil, fmt.Errorf("failed to remove the password file: %w", err)
	}
	_, err := inst.start(processSpec{
		name: "postgres",
		path: server,
		args: []string{
			"-D", data,
			"-h", "127.0.0.1",
			"-p", strconv.Itoa(port),
			"-k", inst.dir,
			// Durability is not under test; skipping the syncs keeps the disk out of it.
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		},
		log:     inst.path("postgres.log"),
		cred:    cred,
		stopSig: syscall.SIGINT, // "fast" shutdown: do not wait for clients to leave
	})
	if err != nil {
		return nil, err
	}
	p := &Postgres{Host: "127.0.0.1", Port: port, SuperuserPassword: password, inst: inst}
	p.DSN = p.DSNFor(PostgresSuperuser, password, "")
	err = waitReady("PostgreSQL", postgresTimeout, inst.procs, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, p.DSN)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return conn.Ping(ctx)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func runInitdb(inst *instance, initdb string, cred *syscall.Credential, data, pwfile string) error {
	logPath := inst.path("initdb.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("failed to create the initdb log: %w", err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, initdb,
		"-D", data, "-U", PostgresSuperuser, "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	cmd.Dir = inst.dir
	cmd.Env = minimalEnv(inst.dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	err = spawn(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		out, _ := readTail(logPath, 0, maxLogLines)
		return fmt.Errorf("initdb failed: %w\n%s", err, out)
	}
	return nil
}
