package xds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// Server is the xDS server. Create it with NewServer, run it with Serve;
// InspectDataplane works whether or not it serves.
type Server struct {
	o     Options
	log   *slog.Logger
	cache *meshCache

	// tokens are the destination-bound JWT-SVIDs, shared by dataplanes of
	// one identity.
	tokens *tokenCache
	// session names this process in its heartbeat and session entries.
	session string

	mu      sync.Mutex
	streams map[int64]*stream
	byNode  map[string]map[int64]*stream
	running bool
	loaded  chan struct{}
	timers  map[string]*time.Timer

	// bindMu serializes binding a stream to its node with rebuilds, which
	// check the node's streams before installing its new resources. It is
	// taken before mu.
	bindMu sync.Mutex
	// bindings are what the tokens of each node's streams must match, by
	// mesh and name; revoked holds revocations by node ID.
	bindings map[string]map[string]binding
	revoked  map[string]time.Time
	// rechecking is set while a round of role re-checks runs; background
	// tracks it.
	rechecking atomic.Bool
	background sync.WaitGroup
	// sent counts bytes of responses, for benchmarks and metrics.
	sent    sentCounter
	metrics *metrics
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewServer returns a Server; nothing runs until Serve.
func NewServer(o Options) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{
		o: o, log: o.Logger.With("component", "xds", "replica", o.InstanceID), cache: newMeshCache(), tokens: newTokenCache(),
		session: randomID(), streams: map[int64]*stream{}, byNode: map[string]map[int64]*stream{}, loaded: make(chan struct{}),
		timers: map[string]*time.Timer{}, metrics: newMetrics(),
		bindings: map[string]map[string]binding{}, revoked: map[string]time.Time{},
	}, nil
}

// Serve loads the store, then serves ADS on ln until ctx ends. It keeps
// every dataplane's resources current from store changes, records stream
// ownership for liveness, renews certificates and identity tokens, and
// deletes bootstrap-created Dataplanes whose stream is gone for Grace.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	opts := append([]grpc.ServerOption(nil), s.o.ServerOptions...)
	switch {
	case s.o.TLS != nil:
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.o.TLS)))
	case !s.o.Insecure:
		return errors.New("xds: TLS is required (Options.TLS)")
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("xds: already serving")
	}
	s.running = true
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWorld()
	events, err := s.o.Store.Watch(ctx)
	if err != nil {
		return fmt.Errorf("xds: watching the store: %w", err)
	}
	if err := s.heartbeat(ctx); err != nil {
		return err
	}
	if err := s.load(ctx, w); err != nil {
		return err
	}
	if err := s.loadRevocations(ctx); err != nil {
		return fmt.Errorf("xds: loading revocations: %w", err)
	}
	s.rebuild(ctx, w, map[string]bool{allMeshes: true})
	close(s.loaded)

	opts = append(opts, grpc.StreamInterceptor(s.authenticate), grpc.UnaryInterceptor(refuseUnary))
	gs := grpc.NewServer(opts...)
	xs := serverv3.NewServer(ctx, s.cache, s.callbacks())
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, xs)

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(ln) }()
	go func() { errc <- s.loop(ctx, w, events) }()
	s.log.Info("xds: serving ADS", "addr", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop()
	}
	s.background.Wait()
	s.stopTimers()
	s.release(context.WithoutCancel(ctx))
	if errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// loop applies store events and runs the periodic work.
func (s *Server) loop(ctx context.Context, w *world, events <-chan store.Event) error {
	tick := time.NewTicker(s.o.SyncInterval)
	defer tick.Stop()
	beat := time.NewTicker(s.o.SessionTTL / 3)
	defer beat.Stop()
	recheck := time.NewTicker(s.o.RecheckInterval)
	defer recheck.Stop()
	jwksEvery := 60
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("xds: store watch ended")
			}
			dirty := map[string]bool{}
			batch := []store.Event{ev}
		drain:
			for len(batch) < 4096 {
				select {
				case ev, ok := <-events:
					if !ok {
						break drain
					}
					batch = append(batch, ev)
				default:
					break drain
				}
			}
			for _, ev := range batch {
				if ev.Op == 0 {
					fresh := newWorld()
					fresh.builders = w.builders
					if err := s.load(ctx, fresh); err != nil {
						s.log.Error("xds: resync failed", "err", err)
						continue
					}
					*w = *fresh
					dirty[allMeshes] = true
					if err := s.loadRevocations(ctx); err != nil {
						s.log.Error("xds: resync of revocations failed", "err", err)
					}
					continue
				}
				if ev.Key.Kind == token.KindRevocation {
					s.applyRevocation(ctx, ev.Key)
					continue
				}
				d, err := s.apply(ctx, w, ev)
				if err != nil {
					s.log.Error("xds: applying store change", "key", ev.Key.String(), "err", err)
					continue
				}
				for m := range d {
					dirty[m] = true
				}
			}
			s.rebuild(ctx, w, dirty)
		case <-beat.C:
			if err := s.heartbeat(ctx); err != nil {
				s.log.Error("xds: heartbeat", "err", err)
			}
		case <-recheck.C:
			s.recheckRoles(ctx)
		case <-tick.C:
			if n%jwksEvery == 0 {
				s.loadJWKS(ctx, w)
			}
			if s.refreshReplicas(ctx, w) {
				s.rebuild(ctx, w, map[string]bool{allMeshes: true})
			}
			s.sweep(ctx, w)
			s.renewAll(ctx)
		}
	}
}

// rebuild regenerates the dirty meshes and installs them in the cache.
func (s *Server) rebuild(ctx context.Context, w *world, dirty map[string]bool) {
	if dirty[allMeshes] {
		dirty = map[string]bool{}
		for name := range w.meshes {
			dirty[name] = true
		}
		for id := range s.cache.meshNames() {
			dirty[id] = true
		}
	}
	for mesh := range dirty {
		if _, ok := w.meshes[mesh]; !ok {
			delete(w.builders, mesh)
			s.bindMu.Lock()
			delete(s.bindings, mesh)
			gone := s.cache.dropMesh(mesh)
			s.bindMu.Unlock()
			s.closeNodes(gone, "mesh deleted")
			continue
		}
		if w.bundles[mesh] == nil {
			s.loadBundle(ctx, w, mesh)
		}
		m, nodes, err := s.build(w, mesh)
		if err != nil {
			s.log.Error("xds: cannot generate mesh config", "mesh", mesh, "err", err)
			continue
		}
		s.bindMu.Lock()
		s.rebind(w, mesh, nodes)
		gone := s.cache.setMesh(m, nodes)
		s.bindMu.Unlock()
		s.closeNodes(gone, "dataplane deleted")
	}
}

// meshNames lists the meshes the cache holds.
func (c *meshCache) meshNames() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.meshes))
	for name := range c.meshes {
		out[name] = true
	}
	return out
}

// renewAll renews due certificates and tokens of connected nodes, then
// forgets the tokens no connected node renewed.
func (s *Server) renewAll(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.byNode))
	for id := range s.byNode {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if err := s.ensureIdentity(ctx, id); err != nil {
			s.log.Error("xds: renewing identity", "node", id, "err", err)
		}
	}
	s.tokens.sweep(s.o.Now())
}

// ensureIdentity issues the node's certificate when it has none, when it
// is due for renewal (at rotateAt of its life) or when its SPIFFE ID
// changed, and its destination-bound JWT-SVIDs: one per destination
// identity its routes attach a token to (aud = that SPIFFE ID), renewed at
// half-life.
func (s *Server) ensureIdentity(ctx context.Context, id string) error {
	v, ok := s.cache.view(id)
	if !ok {
		return nil
	}
	now := s.o.Now()
	sid, err := spiffeID(v.node.SpiffeID)
	if err != nil {
		return err
	}
	u := identityUpdate{forID: v.node.SpiffeID, tokensFor: v.node.SpiffeID}
	if v.identity == nil || v.identFor != v.node.SpiffeID || !now.Before(v.renewAt) {
		svid, err := s.o.CA.IssueX509SVID(ctx, v.node.Mesh, sid)
		if err != nil {
			return fmt.Errorf("xds: issuing certificate for %s: %w", id, err)
		}
		if u.secret, err = generate.IdentitySecretResource(svid.CertPEM, svid.KeyPEM); err != nil {
			return err
		}
		u.renewAt = svid.RenewAt
	}
	u.tokens, u.refreshAt, u.setTokens, err = s.routeTokens(ctx, id, v, sid, now)
	if err != nil {
		return fmt.Errorf("xds: issuing JWT-SVIDs for %s: %w", id, err)
	}
	if u.secret != nil || u.setTokens {
		s.cache.setIdentity(id, u)
	}
	return nil
}
