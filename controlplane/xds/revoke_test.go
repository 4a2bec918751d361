package xds

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

// TestRevocationClosesStreamsOnEveryReplica: revoking a Dataplane's
// tokens closes its streams on every replica at once (through the store
// watch) and refuses the old token afterwards; a token issued later is
// served, and other Dataplanes are untouched.
func TestRevocationClosesStreamsOnEveryReplica(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	t.Cleanup(func() { st.Close() })
	put(t, st, resource.KindMesh, "", "default", `{"type":"Mesh","name":"default"}`)
	a := replica(t, st, "replica-a", nil)
	b := replica(t, st, "replica-b", nil)
	a.st = st
	a.ownedDataplane("web-1", "10.0.0.1", "web", webOwner)
	a.ownedDataplane("redis-1", "10.0.0.2", "redis", redisOwner)
	waitServed(t, b.srv, "web-1", "10.0.0.1", "web", webOwner)
	waitServed(t, b.srv, "redis-1", "10.0.0.2", "redis", redisOwner)
	webClaims := token.DataplaneClaims{Mesh: "default", Name: "web-1", SPIFFEID: webID, RoleARN: webOwner.RoleARN, RoleID: webOwner.RoleID}
	old := a.claimsToken(webClaims)
	redis := a.connect("default.redis-1", a.claimsToken(token.DataplaneClaims{Mesh: "default", Name: "redis-1", SPIFFEID: redisID, RoleID: redisOwner.RoleID}), false, nil)
	redis.waitFor(t, "redis config", func(c *adsclient.Client) bool { return c.Consistent() == nil })
	var streams []*running
	for _, h := range []*harness{a, b} {
		r := h.connect("default.web-1", old, false, nil)
		r.waitFor(t, "web config", func(c *adsclient.Client) bool { return c.Consistent() == nil })
		streams = append(streams, r)
	}
	closedBefore := []float64{testutil.ToFloat64(a.srv.metrics.closed.WithLabelValues(refusedRevoked)), testutil.ToFloat64(b.srv.metrics.closed.WithLabelValues(refusedRevoked))}

	if _, err := a.tokens.RevokeDataplane(ctx, "default", "web-1"); err != nil {
		t.Fatal(err)
	}
	for i, h := range []*harness{a, b} {
		if got := streamCode(t, streams[i]); got != codes.Unauthenticated {
			t.Fatalf("replica %d: code %v, want Unauthenticated", i, got)
		}
		if got := testutil.ToFloat64(h.srv.metrics.closed.WithLabelValues(refusedRevoked)) - closedBefore[i]; got != 1 {
			t.Errorf("replica %d: closes counted for %s: %v, want 1", i, refusedRevoked, got)
		}
		before := testutil.ToFloat64(h.srv.metrics.refused.WithLabelValues(refusedRevoked))
		again, rc := h.connectRecording("default.web-1", old, false)
		if got := streamCode(t, again); got != codes.Unauthenticated {
			t.Fatalf("replica %d: the revoked token reconnected: code %v", i, got)
		}
		if got := testutil.ToFloat64(h.srv.metrics.refused.WithLabelValues(refusedRevoked)) - before; got != 1 {
			t.Errorf("replica %d: refusals counted for %s: %v, want 1", i, refusedRevoked, got)
		}
		if ids, keys := rc.snapshot(); len(ids) != 0 || keys != 0 {
			t.Fatalf("replica %d: the revoked token received %v", i, ids)
		}
	}
	if err := streamErr(redis); err != nil {
		t.Fatalf("another Dataplane's stream ended: %v", err)
	}

	// A login after the revocation gets a token that works (tokens carry
	// their issue time to the second).
	later, err := token.New(token.Config{Store: st, Now: func() time.Time { return time.Now().Add(2 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, err := later.IssueDataplaneToken(ctx, webClaims)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*harness{a, b} {
		r, rc := h.connectRecording("default.web-1", fresh, false)
		r.waitFor(t, "config for a token issued after the revocation", func(c *adsclient.Client) bool {
			return c.Consistent() == nil && rc.has(webID)
		})
	}
}

// fakeChecker is a RoleChecker answering err.
type fakeChecker struct {
	mu    sync.Mutex
	err   error
	calls int
	seen  []token.DataplaneClaims
	dps   []*resource.Dataplane
}

func (f *fakeChecker) Recheck(_ context.Context, c token.DataplaneClaims, dp *resource.Dataplane) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.seen = append(f.seen, c)
	f.dps = append(f.dps, dp)
	return f.err
}

func (f *fakeChecker) set(err error) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	return f.calls
}

func (f *fakeChecker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type unreachable struct{}

func (unreachable) Error() string   { return "iam: unreachable" }
func (unreachable) Temporary() bool { return true }

// TestRoleRecheck: every open stream's role is re-checked periodically;
// IAM being unreachable keeps the stream, a role that lost the Dataplane
// closes it.
func TestRoleRecheck(t *testing.T) {
	fc := &fakeChecker{}
	h := newHarness(t, func(o *Options) { o.RoleChecker = fc; o.RecheckInterval = 20 * time.Millisecond })
	h.ownedDataplane("web-1", "10.0.0.1", "web", webOwner)
	claims := token.DataplaneClaims{Mesh: "default", Name: "web-1", SPIFFEID: webID, RoleARN: webOwner.RoleARN, RoleID: webOwner.RoleID}
	r := h.connect("default.web-1", h.claimsToken(claims), false, nil)
	r.waitFor(t, "config", func(c *adsclient.Client) bool { return c.Consistent() == nil })
	waitUntil(t, "no re-check", func() bool { return fc.count() > 0 })
	fc.mu.Lock()
	if c, dp := fc.seen[0], fc.dps[0]; c.RoleID != webOwner.RoleID || c.Name != "web-1" || dp.Name != "web-1" || dp.Owner == nil || *dp.Owner != *webOwner {
		fc.mu.Unlock()
		t.Fatalf("re-checked %+v with Dataplane %+v", c, dp)
	}
	fc.mu.Unlock()

	n := fc.set(fmt.Errorf("wrapped: %w", unreachable{}))
	waitUntil(t, "no re-check while IAM is unreachable", func() bool { return fc.count() > n+1 })
	if err := streamErr(r); err != nil {
		t.Fatalf("stream closed while IAM was unreachable: %v", err)
	}
	if testutil.ToFloat64(h.srv.metrics.recheck.WithLabelValues(recheckUnavailable)) == 0 || testutil.ToFloat64(h.srv.metrics.recheck.WithLabelValues(recheckOK)) == 0 {
		t.Fatal("re-check results not counted")
	}

	before := testutil.ToFloat64(h.srv.metrics.closed.WithLabelValues(closedRoleRevoked))
	fc.set(errors.New("auth: role web no longer has the tag kuma.io/service=web"))
	if got := streamCode(t, r); got != codes.PermissionDenied {
		t.Fatalf("code %v, want PermissionDenied", got)
	}
	if got := testutil.ToFloat64(h.srv.metrics.closed.WithLabelValues(closedRoleRevoked)) - before; got != 1 {
		t.Errorf("closes counted for %s: %v, want 1", closedRoleRevoked, got)
	}
}

func TestRecheckIntervalBounds(t *testing.T) {
	st := memory.New(nil)
	t.Cleanup(func() { st.Close() })
	tokens, _ := token.New(token.Config{Store: st})
	authority, err := ca.New(ca.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, want time.Duration
		ok       bool
	}{
		{0, MaxRecheckInterval, true},
		{time.Minute, time.Minute, true},
		{MaxRecheckInterval + time.Second, 0, false},
		{-time.Second, 0, false},
	} {
		o, err := Options{Store: st, Tokens: tokens, CA: authority, RecheckInterval: tc.in}.withDefaults()
		if (err == nil) != tc.ok || (tc.ok && o.RecheckInterval != tc.want) {
			t.Errorf("RecheckInterval %s: got %s, %v", tc.in, o.RecheckInterval, err)
		}
	}
}
