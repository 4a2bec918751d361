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
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// Server is the xDS server. Create it with NewServer, run it with Serve;
// InspectDataplane works whether or not it serves. It runs the store
// watch loop that keeps the cache current and delegates the rest: the
// authenticator admits streams, the stream callbacks bind them to their
// nodes, the access table decides which streams may hold which node, the
// identity issuer gives nodes their certificates and tokens, and liveness
// records sessions and removes abandoned Dataplanes.
type Server struct {
	o       Options
	log     *slog.Logger
	cache   *meshCache
	src     *worldSource
	metrics *metrics
	// sent counts bytes of responses, for benchmarks and metrics.
	sent sentCounter

	streams   *streamRegistry
	auth      *authenticator
	callbacks *streamCallbacks
	access    *accessTable
	identity  *identityIssuer
	live      livenessTracker

	mu      sync.Mutex
	running bool
	loaded  chan struct{}
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
	log := o.Logger.With("component", "xds", "replica", o.InstanceID)
	s := &Server{o: o, log: log, cache: newMeshCache(), src: newWorldSource(o, log), metrics: newMetrics(),
		streams: newStreamRegistry(), loaded: make(chan struct{})}
	s.auth = &authenticator{tokens: o.Tokens, now: o.Now, log: log, metrics: s.metrics}
	s.access = newAccessTable(o, log, s.metrics, s.streams)
	s.identity = newIdentityIssuer(o, s.cache, log)
	s.live = newLiveness(o, log, s.streams)
	s.callbacks = &streamCallbacks{streams: s.streams, access: s.access, live: s.live, identity: s.identity,
		metrics: s.metrics, sent: &s.sent, log: log}
	return s, nil
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
	w := newWorld(s.src)
	events, err := s.o.Store.Watch(ctx)
	if err != nil {
		return fmt.Errorf("xds: watching the store: %w", err)
	}
	if err := s.live.heartbeat(ctx); err != nil {
		return err
	}
	if err := w.load(ctx); err != nil {
		return err
	}
	if err := s.access.loadRevocations(ctx); err != nil {
		return fmt.Errorf("xds: loading revocations: %w", err)
	}
	s.rebuild(ctx, w, map[string]bool{allMeshes: true})
	close(s.loaded)

	opts = append(opts, grpc.StreamInterceptor(s.auth.intercept), grpc.UnaryInterceptor(refuseUnary))
	gs := grpc.NewServer(opts...)
	xs := serverv3.NewServer(ctx, s.cache, s.callbacks.funcs())
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
	s.access.wait()
	s.live.stop(context.WithoutCancel(ctx))
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
			start := time.Now()
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
					fresh := newWorld(s.src)
					fresh.builders = w.builders
					if err := fresh.load(ctx); err != nil {
						s.log.Error("xds: resync failed", "error", err)
						continue
					}
					*w = *fresh
					dirty[allMeshes] = true
					if err := s.access.loadRevocations(ctx); err != nil {
						s.log.Error("xds: resync of revocations failed", "error", err)
					}
					continue
				}
				if ev.Key.Kind == token.KindRevocation {
					s.access.applyRevocation(ctx, ev.Key)
					continue
				}
				d, err := w.apply(ctx, ev)
				if err != nil {
					s.log.Error("xds: applying store change", "key", ev.Key.String(), "error", err)
					continue
				}
				for m := range d {
					dirty[m] = true
				}
			}
			s.rebuild(ctx, w, dirty)
			s.metrics.push.Observe(time.Since(start).Seconds())
		case <-beat.C:
			if err := s.live.heartbeat(ctx); err != nil {
				s.log.Error("xds: heartbeat", "error", err)
			}
		case <-recheck.C:
			s.access.recheckRoles(ctx)
		case <-tick.C:
			if n%jwksEvery == 0 {
				w.loadJWKS(ctx)
			}
			if w.refreshReplicas(ctx) {
				s.rebuild(ctx, w, map[string]bool{allMeshes: true})
			}
			s.live.sweep(ctx, w.offlineBootstrapped())
			s.identity.renew(ctx, s.streams.nodeIDs())
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
			gone := s.access.install(mesh, nil, func() []string { return s.cache.dropMesh(mesh) })
			s.closeNodes(gone, "mesh deleted")
			continue
		}
		if w.bundles[mesh] == nil {
			w.loadBundle(ctx, mesh)
		}
		start := time.Now()
		m, nodes, err := w.build(mesh)
		if err != nil {
			s.metrics.buildFailed.Inc()
			s.log.Error("xds: cannot generate mesh config; sidecars keep the last good one", "mesh", mesh, "error", err)
			continue
		}
		gone := s.access.install(mesh, bindingsOf(nodes, w.dps[mesh]), func() []string { return s.cache.setMesh(m, nodes) })
		s.metrics.build.Observe(time.Since(start).Seconds())
		s.closeNodes(gone, "dataplane deleted")
	}
}

// closeNodes ends every stream of the given nodes.
func (s *Server) closeNodes(ids []string, reason string) {
	for _, id := range ids {
		s.streams.forNode(id, func(st *stream) {
			s.log.Info("xds: closing stream", "node", id, "reason", reason)
			st.close(errDataplaneDeleted)
		})
	}
}
