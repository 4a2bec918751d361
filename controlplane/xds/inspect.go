package xds

import (
	"context"
	"errors"
	"fmt"

	"github.com/ecsmesh/ecsmesh/controlplane/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// ErrNotFound is returned by InspectDataplane for an unknown dataplane.
var ErrNotFound = errors.New("xds: dataplane not found")

// InspectDataplane renders the dataplane's current xDS resources as SPEC
// §3 `inspect` prints them. It works for any stored Dataplane, connected
// or not (unconnected ones have no identity certificate or token yet).
// It implements admin.Inspector.
func (s *Server) InspectDataplane(ctx context.Context, mesh, name string) ([]byte, error) {
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	var snap generate.Snapshot
	if running {
		select {
		case <-s.loaded:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		v, ok := s.cache.view(NodeID(mesh, name))
		if !ok {
			return nil, s.inspectMissing(ctx, mesh, name)
		}
		snap = generate.Resources(v.mesh, v.node, v.identity, v.outbound)
	} else {
		w := newWorld()
		if err := s.load(ctx, w); err != nil {
			return nil, err
		}
		if w.meshes[mesh] == nil || w.dps[mesh][name] == nil {
			return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, mesh, name)
		}
		m, nodes, err := s.build(w, mesh)
		if err != nil {
			return nil, err
		}
		n := nodes[name]
		if n == nil {
			return nil, fmt.Errorf("xds: cannot generate the config of %s/%s (see the CP log)", mesh, name)
		}
		snap = generate.Resources(m, n, nil, generate.OutboundFilterConfig(m, n, nil))
	}
	return snap.JSON()
}

// inspectMissing explains why a dataplane has no config.
func (s *Server) inspectMissing(ctx context.Context, mesh, name string) error {
	_, err := s.o.Store.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, mesh, name)
	}
	if err != nil {
		return fmt.Errorf("xds: reading dataplane %s/%s: %w", mesh, name, err)
	}
	return fmt.Errorf("xds: dataplane %s/%s has no config yet (just applied, or its identity cannot be rendered: see the CP log)", mesh, name)
}
