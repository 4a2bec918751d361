// Package adsclient is an ADS client that subscribes like Envoy: it sends
// the node (ID and metadata) with a bearer token, subscribes to clusters
// and listeners by wildcard and to the endpoints, secrets and filter
// configurations they name, validates every resource (ValidateAll on each
// packed Any) and ACKs or NACKs each response. Tests use it, and the local
// run uses it as the stand-in for Envoy.
package adsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Config configures a Client.
type Config struct {
	// Address is the CP's ADS address, host:port.
	Address string
	// TLS secures the connection; nil means plaintext (tests only).
	TLS *tls.Config
	// Token returns the dataplane token sent as `authorization: Bearer`
	// (called for each stream, like Envoy reading a reloadable token file).
	Token func() (string, error)
	// NodeID is <mesh>.<name>.
	NodeID string
	// Metadata is the node metadata (e.g. ecsmesh.io/bind-outbounds).
	Metadata map[string]any
	// Delta uses the incremental protocol instead of state of the world.
	Delta bool
	// Reject, when set, is asked about every response after validation; a
	// non-nil error NACKs it.
	Reject func(typeURL string, resources map[string]*anypb.Any) error
	// Logger; nil discards.
	Logger *slog.Logger
}

// Client is one ADS stream's view of its configuration.
type Client struct {
	cfg  Config
	conn *grpc.ClientConn
	log  *slog.Logger

	mu        sync.Mutex
	resources map[string]map[string]*anypb.Any
	versions  map[string]string
	acks      int
	nacks     int
	lastNACK  error
	changed   chan struct{}
	sentNames map[string][]string
}

// New connects lazily to cfg.Address.
func New(cfg Config) (*Client, error) {
	if cfg.Address == "" || cfg.NodeID == "" || cfg.Token == nil {
		return nil, errors.New("adsclient: Address, NodeID and Token are required")
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	conn, err := grpc.NewClient(cfg.Address, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("adsclient: dialing %s: %w", cfg.Address, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, conn: conn, log: log, resources: map[string]map[string]*anypb.Any{}, versions: map[string]string{},
		changed: make(chan struct{}), sentNames: map[string][]string{}}
	for _, t := range Types {
		c.resources[t] = map[string]*anypb.Any{}
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) node() (*corev3.Node, error) {
	n := &corev3.Node{Id: c.cfg.NodeID, Cluster: c.cfg.NodeID, UserAgentName: "ecsmesh-adsclient"}
	if len(c.cfg.Metadata) > 0 {
		md, err := structpb.NewStruct(c.cfg.Metadata)
		if err != nil {
			return nil, fmt.Errorf("adsclient: node metadata: %w", err)
		}
		n.Metadata = md
	}
	return n, nil
}

func (c *Client) streamContext(ctx context.Context) (context.Context, error) {
	tok, err := c.cfg.Token()
	if err != nil {
		return nil, fmt.Errorf("adsclient: reading token: %w", err)
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), nil
}

// Run opens one ADS stream and processes responses until ctx ends or the
// stream fails; it returns the stream's error (nil when ctx ended).
func (c *Client) Run(ctx context.Context) error {
	sctx, err := c.streamContext(ctx)
	if err != nil {
		return err
	}
	node, err := c.node()
	if err != nil {
		return err
	}
	ads := discovery.NewAggregatedDiscoveryServiceClient(c.conn)
	if c.cfg.Delta {
		err = c.runDelta(sctx, ads, node)
	} else {
		err = c.runSotw(sctx, ads, node)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// process validates a response's resources and returns the names the
// whole configuration now refers to, or the reason to NACK.
func (c *Client) validate(typeURL string, res map[string]*anypb.Any) error {
	for name, a := range res {
		if a.GetTypeUrl() != typeURL {
			return fmt.Errorf("resource %s has type %s in a %s response", name, a.GetTypeUrl(), typeURL)
		}
		if err := check(a, refs{}); err != nil {
			return fmt.Errorf("resource %s: %w", name, err)
		}
	}
	if c.cfg.Reject != nil {
		return c.cfg.Reject(typeURL, res)
	}
	return nil
}

// wanted computes the names to subscribe per named type from what is held.
func (c *Client) wanted() refs {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := refs{}
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		for _, a := range c.resources[t] {
			_ = check(a, out)
		}
	}
	return out
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c *Client) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Resources returns a copy of the held resources of typeURL, by name.
func (c *Client) Resources(typeURL string) map[string]*anypb.Any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.resources[typeURL])
}

// Version returns the last ACKed version of typeURL (SotW).
func (c *Client) Version(typeURL string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.versions[typeURL]
}

// Counts returns how many responses were ACKed and NACKed, and the last
// NACK's reason.
func (c *Client) Counts() (acks, nacks int, lastNACK error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acks, c.nacks, c.lastNACK
}

// Consistent reports whether every cluster, endpoint set, secret and
// filter configuration the held listeners and clusters refer to is held.
func (c *Client) Consistent() error {
	want := c.wanted()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.resources[resourcev3.ListenerType]) == 0 || len(c.resources[resourcev3.ClusterType]) == 0 {
		return errors.New("adsclient: no listeners or clusters yet")
	}
	for typ, names := range want {
		for _, n := range sortedNames(names) {
			if c.resources[typ][n] == nil {
				return fmt.Errorf("adsclient: %s %q is referenced but not received", typ, n)
			}
		}
	}
	return nil
}

// Wait blocks until cond holds (checked after every change) or ctx ends.
func (c *Client) Wait(ctx context.Context, cond func(*Client) bool) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond(c) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("adsclient: waiting for %s: %w", c.cfg.NodeID, ctx.Err())
		}
	}
}

func nackStatus(err error) *status.Status {
	return &status.Status{Code: 3, Message: err.Error()} // INVALID_ARGUMENT, as Envoy sends
}
