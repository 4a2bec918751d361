package xds

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// binding is what a stream's token must match to hold a node: the stored
// Dataplane's computed SPIFFE ID, its proxy type and, when a role owns
// it, the role's RoleId.
type binding struct {
	spiffeID  string
	proxyType string
	owner     *resource.Owner
	dp        *resource.Dataplane // for the role re-check; never modified
}

func bindingOf(n *generate.Node, dp *resource.Dataplane) binding {
	return binding{spiffeID: n.SpiffeID, proxyType: dp.ProxyType(), owner: dp.Owner, dp: dp}
}

// check returns why a token with claims c, of a name revoked at revokedAt
// (zero: not revoked), may not hold a stream of the node, or "".
func (b binding) check(c token.DataplaneClaims, revokedAt time.Time) string {
	switch {
	case token.Revoked(c, revokedAt):
		return refusedRevoked
	case c.SPIFFEID != b.spiffeID:
		return refusedSPIFFEMismatch
	case c.ProxyType != b.proxyType:
		return refusedProxyTypeMismatch
	case b.owner != nil && (b.owner.RoleID == "" || subtle.ConstantTimeCompare([]byte(c.RoleID), []byte(b.owner.RoleID)) != 1):
		return refusedOwnerMismatch
	}
	return ""
}

// causeOf is the close cause of a check's reason.
func causeOf(reason string) *closeCause {
	if reason == refusedRevoked {
		return errTokenRevoked
	}
	return bindingBroken(reason)
}

// bindStream registers st as a stream of node id if its token matches
// the stored Dataplane and is not revoked. The revocation is read from the
// store as well, so a revocation this replica has not yet seen through its
// watch still refuses the stream. Registration and rebuilds serialize on
// bindMu: a stream is checked against the bindings its node is served
// with, and every later rebuild checks it again.
func (s *Server) bindStream(st *stream, id string, bind bool) error {
	mesh, name := st.claims.Mesh, st.claims.Name
	revokedAt, err := token.RevokedAt(st.ctx, s.o.Store, mesh, name)
	if err != nil {
		s.log.Error("xds: reading the revocation of a dataplane", "node", id, "err", err)
		return status.Error(codes.Unavailable, "xds: cannot check the dataplane token yet; retry")
	}
	s.bindMu.Lock()
	defer s.bindMu.Unlock()
	b, ok := s.bindings[mesh][name]
	if !ok {
		s.metrics.refused.WithLabelValues(refusedNotStored).Inc()
		return status.Errorf(codes.NotFound, "xds: dataplane %s/%s is not stored", mesh, name)
	}
	if r := s.revoked[id]; r.After(revokedAt) {
		revokedAt = r
	}
	if reason := b.check(st.claims, revokedAt); reason != "" {
		s.metrics.refused.WithLabelValues(reason).Inc()
		s.log.Warn("xds: stream refused", "reason", reason, "node", id, "tokenSpiffeId", st.claims.SPIFFEID, "tokenRoleArn", st.claims.RoleARN)
		c := causeOf(reason)
		return status.Error(c.code, c.msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.nodeID, st.bind = id, bind
	if s.byNode[id] == nil {
		s.byNode[id] = map[int64]*stream{}
	}
	s.byNode[id][st.id] = st
	return nil
}

// rebind records the bindings of a mesh's freshly built nodes and closes
// this replica's streams of those nodes whose token no longer matches
// (the Dataplane was replaced by another owner, its identity changed).
// The caller holds bindMu and installs the nodes in the cache after, so
// a closed stream is never sent the new identity.
func (s *Server) rebind(w *world, mesh string, nodes map[string]*generate.Node) {
	next := make(map[string]binding, len(nodes))
	for name, n := range nodes {
		if e := w.dps[mesh][name]; e != nil {
			next[name] = bindingOf(n, e.dp)
		}
	}
	s.bindings[mesh] = next
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, streams := range s.byNode {
		m, name, _ := splitNodeID(id)
		b, ok := next[name]
		if m != mesh || !ok {
			continue // other mesh, or gone: closed once the cache drops it
		}
		for _, st := range streams {
			if reason := b.check(st.claims, s.revoked[id]); reason != "" && st.ctx.Err() == nil {
				s.log.Warn("xds: closing stream", "node", id, "reason", reason)
				st.close(causeOf(reason))
			}
		}
	}
}

// loadRevocations reads every revocation (at start and after a watch
// gap) and closes the streams they revoke.
func (s *Server) loadRevocations(ctx context.Context) error {
	recs, err := s.o.Store.List(ctx, token.KindRevocation, store.ListOptions{})
	if err != nil {
		return err
	}
	revoked := make(map[string]time.Time, len(recs))
	for _, r := range recs {
		at, err := token.ParseRevocation(r)
		if err != nil {
			s.log.Warn("xds: skipping unreadable record", "key", r.Key.String(), "err", err)
			continue
		}
		revoked[NodeID(r.Mesh, r.Name)] = at
	}
	s.bindMu.Lock()
	s.revoked = revoked
	s.bindMu.Unlock()
	for id := range revoked {
		s.closeRevoked(id)
	}
	return nil
}

// applyRevocation folds a change of a revocation record in and closes
// this replica's streams whose token it revokes.
func (s *Server) applyRevocation(ctx context.Context, k store.Key) {
	id := NodeID(k.Mesh, k.Name)
	rec, err := s.o.Store.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		s.bindMu.Lock()
		delete(s.revoked, id)
		s.bindMu.Unlock()
		return
	}
	var at time.Time
	if err == nil {
		at, err = token.ParseRevocation(rec)
	}
	if err != nil {
		s.log.Error("xds: reading a revocation", "key", k.String(), "err", err)
		return
	}
	s.bindMu.Lock()
	s.revoked[id] = at
	s.bindMu.Unlock()
	s.closeRevoked(id)
}

func (s *Server) closeRevoked(id string) {
	s.bindMu.Lock()
	at := s.revoked[id]
	s.bindMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.byNode[id] {
		if token.Revoked(st.claims, at) && st.ctx.Err() == nil {
			s.log.Warn("xds: closing stream", "node", id, "reason", refusedRevoked)
			st.close(errTokenRevoked)
		}
	}
}

// recheckRoles asks the RoleChecker, off the run loop, whether the role
// of every open stream still owns its Dataplane. A round still running
// skips this one.
func (s *Server) recheckRoles(ctx context.Context) {
	if s.o.RoleChecker == nil || !s.rechecking.CompareAndSwap(false, true) {
		return
	}
	type item struct {
		st *stream
		dp *resource.Dataplane
	}
	var items []item
	s.bindMu.Lock()
	s.mu.Lock()
	for id, streams := range s.byNode {
		mesh, name, _ := splitNodeID(id)
		b, ok := s.bindings[mesh][name]
		if !ok {
			continue
		}
		for _, st := range streams {
			items = append(items, item{st, b.dp})
		}
	}
	s.mu.Unlock()
	s.bindMu.Unlock()
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		defer s.rechecking.Store(false)
		for _, it := range items {
			if ctx.Err() != nil {
				return
			}
			if it.st.ctx.Err() != nil {
				continue
			}
			s.recheck(ctx, it.st, it.dp)
		}
	}()
}

func (s *Server) recheck(ctx context.Context, st *stream, dp *resource.Dataplane) {
	err := s.o.RoleChecker.Recheck(ctx, st.claims, dp)
	var tmp interface{ Temporary() bool }
	switch {
	case err == nil:
		s.metrics.recheck.WithLabelValues(recheckOK).Inc()
	case errors.As(err, &tmp) && tmp.Temporary():
		s.metrics.recheck.WithLabelValues(recheckUnavailable).Inc()
		s.log.Warn("xds: cannot re-check the role of a stream; keeping it", "node", st.nodeID, "roleArn", st.claims.RoleARN, "err", err)
	case ctx.Err() != nil:
	default:
		s.metrics.recheck.WithLabelValues(recheckRevoked).Inc()
		s.log.Warn("xds: closing stream", "node", st.nodeID, "reason", closedRoleRevoked, "roleArn", st.claims.RoleARN, "err", err)
		st.close(errRoleRevoked)
	}
}
