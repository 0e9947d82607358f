package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// DefaultDirs are the folders the upstream driver looks for provider sockets in, the
// current one first.
var DefaultDirs = []string{"/var/run/secrets-store-csi-providers", "/etc/kubernetes/secrets-store-csi-providers"}

// ClientOptions configure the calls to external providers.
type ClientOptions struct {
	// Dirs are searched in order for <name>.sock; empty means DefaultDirs.
	Dirs []string
	// Timeout bounds each call when the caller's context allows longer; zero means 30s.
	Timeout time.Duration
	// MaxRecvMsgSize is the largest answer accepted; zero means 4 MiB, as upstream.
	MaxRecvMsgSize int
}

// Clients hands out a Client per provider name and keeps one connection per socket.
// Use Lookup as the provider.Registry fallback.
type Clients struct {
	opts  ClientOptions
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by socket path
}

// NewClients returns Clients with opts, defaults filled in.
func NewClients(opts ClientOptions) *Clients {
	if len(opts.Dirs) == 0 {
		opts.Dirs = DefaultDirs
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxRecvMsgSize <= 0 {
		opts.MaxRecvMsgSize = 4 << 20
	}
	return &Clients{opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// Lookup returns the Client for name when name is a valid provider name. It does not
// look for the socket: a provider that is missing is reported by the call, as
// Unavailable naming the provider, since it may well start later.
func (c *Clients) Lookup(name string) (provider.Provider, bool) {
	if !ValidProviderName(name) {
		return nil, false
	}
	return &Client{name: name, clients: c}, true
}

// Close closes every connection.
func (c *Clients) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for path, conn := range c.conns {
		errs = append(errs, conn.Close())
		delete(c.conns, path)
	}
	return errors.Join(errs...)
}

// conn finds the provider's socket and returns a connection to it.
func (c *Clients) conn(name string) (v1alpha1.CSIDriverProviderClient, error) {
	socket := ""
	for _, dir := range c.opts.Dirs {
		p := filepath.Join(dir, name+".sock")
		if _, err := os.Stat(p); err == nil {
			socket = p
			break
		}
	}
	if socket == "" {
		return nil, fmt.Errorf("provider %q: no socket %s.sock in %v: %w", name, name, c.opts.Dirs, provider.ErrUnavailable)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[socket]; ok {
		return v1alpha1.NewCSIDriverProviderClient(conn), nil
	}
	// The interface is secured by the socket's file permissions only, as upstream.
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.opts.MaxRecvMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("provider %q: connecting to %s: %v: %w", name, socket, err, provider.ErrUnavailable)
	}
	c.conns[socket] = conn
	return v1alpha1.NewCSIDriverProviderClient(conn), nil
}

// Client calls one external provider.
type Client struct {
	name    string
	clients *Clients
}

var _ provider.FileProvider = (*Client)(nil)

// Name is the provider name, the socket's base name.
func (c *Client) Name() string { return c.name }

// Fetch fails: an external provider makes whole files, so its plan has no objects to
// fetch. Callers check for provider.FileProvider and call FetchFiles.
func (c *Client) Fetch(context.Context, *providerclass.Plan, provider.Identity) ([]providerclass.ObjectContent, error) {
	return nil, fmt.Errorf("provider %q is an external provider that returns files; call FetchFiles: %w", c.name, provider.ErrInvalid)
}

// Version asks the provider for its runtime version, as the upstream health check does.
func (c *Client) Version(ctx context.Context) (string, error) {
	client, err := c.clients.conn(c.name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.clients.opts.Timeout)
	defer cancel()
	resp, err := client.Version(ctx, &v1alpha1.VersionRequest{Version: "v1alpha1"})
	if err != nil {
		return "", fromStatus(c.name, err)
	}
	return resp.GetRuntimeVersion(), nil
}
