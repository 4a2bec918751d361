package xds

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
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

// accessTable decides which streams may hold which node: it keeps the
// binding of every stored Dataplane (what a stream's token must match) and
// the revocations, checks each stream when it binds to its node and again
// after every rebuild and revocation, and re-checks the IAM role of open
// streams. Its lock is taken before the stream registry's; rebuilds
// install a mesh's nodes in the cache under it (see install).
type accessTable struct {
	store   store.Store
	checker RoleChecker
	streams *streamRegistry
	log     *slog.Logger
	metrics *metrics

	// mu serializes binding a stream to its node with rebuilds, which
	// check the node's streams before installing its new resources.
	mu sync.Mutex
	// bindings are what the tokens of each node's streams must match, by
	// mesh and name; revoked holds revocations by node ID.
	bindings map[string]map[string]binding
	revoked  map[string]time.Time
	// rechecking is set while a round of role re-checks runs; background
	// tracks it.
	rechecking atomic.Bool
	background sync.WaitGroup
}

func newAccessTable(o Options, log *slog.Logger, m *metrics, streams *streamRegistry) *accessTable {
	return &accessTable{store: o.Store, checker: o.RoleChecker, streams: streams, log: log, metrics: m,
		bindings: map[string]map[string]binding{}, revoked: map[string]time.Time{}}
}

// bindingsOf are the bindings of a mesh's freshly built nodes.
func bindingsOf(nodes map[string]*generate.Node, dps map[string]*dpEntry) map[string]binding {
	next := make(map[string]binding, len(nodes))
	for name, n := range nodes {
		if e := dps[name]; e != nil {
			next[name] = bindingOf(n, e.dp)
		}
	}
	return next
}

// bind registers st as a stream of node id if its token matches the
// stored Dataplane and is not revoked. The revocation is read from the
// store as well, so a revocation this replica has not yet seen through its
// watch still refuses the stream. Registration and rebuilds serialize on
// mu: a stream is checked against the bindings its node is served with,
// and every later rebuild checks it again.
func (a *accessTable) bind(st *stream, id string, bind bool) error {
	mesh, name := st.claims.Mesh, st.claims.Name
	revokedAt, err := token.RevokedAt(st.ctx, a.store, mesh, name)
	if err != nil {
		a.log.Error("xds: reading the revocation of a dataplane", "node", id, "error", err)
		return status.Error(codes.Unavailable, "xds: cannot check the dataplane token yet; retry")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.bindings[mesh][name]
	if !ok {
		a.metrics.refused.WithLabelValues(refusedNotStored).Inc()
		return status.Errorf(codes.NotFound, "xds: dataplane %s/%s is not stored", mesh, name)
	}
	if r := a.revoked[id]; r.After(revokedAt) {
		revokedAt = r
	}
	if reason := b.check(st.claims, revokedAt); reason != "" {
		a.metrics.refused.WithLabelValues(reason).Inc()
		a.log.Warn("xds: stream refused", "reason", reason, "node", id, "tokenSpiffeId", st.claims.SPIFFEID, "tokenRoleArn", st.claims.RoleARN)
		c := causeOf(reason)
		return status.Error(c.code, c.msg)
	}
	a.streams.bind(st, id, bind)
	return nil
}

// install records next as the bindings of mesh's freshly built nodes
// (nil: the mesh is gone), closes this replica's streams of those nodes
// whose token no longer matches (the Dataplane was replaced by another
// owner, its identity changed), then runs apply, which installs the build
// in the cache, and returns what apply returns. Streams bind under the
// same lock, so a closed stream is never sent the new identity and a
// stream bound after the check is checked against the new bindings.
func (a *accessTable) install(mesh string, next map[string]binding, apply func() []string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if next == nil {
		delete(a.bindings, mesh)
		return apply()
	}
	a.bindings[mesh] = next
	a.streams.forEach(func(id string, st *stream) {
		m, name, _ := splitNodeID(id)
		b, ok := next[name]
		if m != mesh || !ok {
			return // other mesh, or gone: closed once the cache drops it
		}
		if reason := b.check(st.claims, a.revoked[id]); reason != "" && st.ctx.Err() == nil {
			a.log.Warn("xds: closing stream", "node", id, "reason", reason)
			st.close(causeOf(reason))
		}
	})
	return apply()
}

// loadRevocations reads every revocation (at start and after a watch
// gap) and closes the streams they revoke.
func (a *accessTable) loadRevocations(ctx context.Context) error {
	recs, err := a.store.List(ctx, token.KindRevocation, store.ListOptions{})
	if err != nil {
		return err
	}
	revoked := make(map[string]time.Time, len(recs))
	for _, r := range recs {
		at, err := token.ParseRevocation(r)
		if err != nil {
			a.log.Warn("xds: skipping unreadable record", "key", r.Key.String(), "error", err)
			continue
		}
		revoked[NodeID(r.Mesh, r.Name)] = at
	}
	a.mu.Lock()
	a.revoked = revoked
	a.mu.Unlock()
	for id := range revoked {
		a.closeRevoked(id)
	}
	return nil
}

// applyRevocation folds a change of a revocation record in and closes
// this replica's streams whose token it revokes.
func (a *accessTable) applyRevocation(ctx context.Context, k store.Key) {
	id := NodeID(k.Mesh, k.Name)
	rec, err := a.store.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		a.mu.Lock()
		delete(a.revoked, id)
		a.mu.Unlock()
		return
	}
	var at time.Time
	if err == nil {
		at, err = token.ParseRevocation(rec)
	}
	if err != nil {
		a.log.Error("xds: reading a revocation", "key", k.String(), "error", err)
		return
	}
	a.mu.Lock()
	a.revoked[id] = at
	a.mu.Unlock()
	a.closeRevoked(id)
}

// closeRevoked closes this replica's streams of node id whose token its
// revocation revokes.
func (a *accessTable) closeRevoked(id string) {
	a.mu.Lock()
	at := a.revoked[id]
	a.mu.Unlock()
	a.streams.forNode(id, func(st *stream) {
		if token.Revoked(st.claims, at) && st.ctx.Err() == nil {
			a.log.Warn("xds: closing stream", "node", id, "reason", refusedRevoked)
			st.close(errTokenRevoked)
		}
	})
}

// wait waits for a round of role re-checks still running.
func (a *accessTable) wait() { a.background.Wait() }

// recheckRoles asks the RoleChecker, off the run loop, whether the role
// of every open stream still owns its Dataplane. A round still running
// skips this one.
func (a *accessTable) recheckRoles(ctx context.Context) {
	if a.checker == nil || !a.rechecking.CompareAndSwap(false, true) {
		return
	}
	type item struct {
		st *stream
		dp *resource.Dataplane
	}
	var items []item
	a.mu.Lock()
	a.streams.forEach(func(id string, st *stream) {
		mesh, name, _ := splitNodeID(id)
		if b, ok := a.bindings[mesh][name]; ok {
			items = append(items, item{st, b.dp})
		}
	})
	a.mu.Unlock()
	a.background.Add(1)
	go func() {
		defer a.background.Done()
		defer a.rechecking.Store(false)
		for _, it := range items {
			if ctx.Err() != nil {
				return
			}
			if it.st.ctx.Err() != nil {
				continue
			}
			a.recheck(ctx, it.st, it.dp)
		}
	}()
}

func (a *accessTable) recheck(ctx context.Context, st *stream, dp *resource.Dataplane) {
	err := a.checker.Recheck(ctx, st.claims, dp)
	var tmp interface{ Temporary() bool }
	switch {
	case err == nil:
		a.metrics.recheck.WithLabelValues(recheckOK).Inc()
	case errors.As(err, &tmp) && tmp.Temporary():
		a.metrics.recheck.WithLabelValues(recheckUnavailable).Inc()
		a.log.Warn("xds: cannot re-check the role of a stream; keeping it", "node", st.nodeID, "roleArn", st.claims.RoleARN, "error", err)
	case ctx.Err() != nil:
	default:
		a.metrics.recheck.WithLabelValues(recheckRevoked).Inc()
		a.log.Warn("xds: closing stream", "node", st.nodeID, "reason", closedRoleRevoked, "roleArn", st.claims.RoleARN, "error", err)
		st.close(errRoleRevoked)
	}
}
