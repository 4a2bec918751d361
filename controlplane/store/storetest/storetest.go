// Package storetest is the conformance suite every store.Backend passes:
// memory, SQLite and PostgreSQL run the same tests.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Capabilities says which optional behaviours an implementation has.
type Capabilities struct {
	// Persistent: records survive closing the store and opening it again on
	// the same database (and migrations are idempotent on that restart).
	Persistent bool
	// CrossInstanceWatch: watchers of one instance hear changes committed
	// by another instance on the same database.
	CrossInstanceWatch bool
}

// Opener returns a store for one test; it should register nothing itself:
// Run closes every store it opens at the test's cleanup (Close must be
// idempotent).
type Opener func(t *testing.T) store.Backend

// Deadline bounds every wait for something asynchronous (an event, a lease
// expiring). It is generous on purpose: the suite asserts that things
// happen, never how fast.
const Deadline = 15 * time.Second

// Run runs the suite. open returns a store on a fresh, empty database for
// t; openSecond, when not nil, returns another instance on the database
// that open last created for the same t (it is also how the suite reopens
// a database after closing it).
func Run(t *testing.T, open, openSecond Opener, caps Capabilities) {
	h := &harness{open: open, openSecond: openSecond, caps: caps}
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness)
		when bool
	}{
		{"CreateGetUpdateDelete", testCRUD, true},
		{"ErrorKinds", testErrorKinds, true},
		{"SpecRoundTrip", testSpecRoundTrip, true},
		{"ListOrderAndMesh", testList, true},
		{"BatchAtomic", testBatchAtomic, true},
		{"BatchSameKeyTwice", testBatchSameKey, true},
		{"Expiry", testExpiry, true},
		{"ExpiryElapses", testExpiryElapses, true},
		{"WatchOwnChanges", testWatchOwn, true},
		{"WatchEndsOnCancelAndClose", testWatchEnds, true},
		{"ClosedStore", testClosed, true},
		{"WatchSecondInstance", testWatchSecond, caps.CrossInstanceWatch && openSecond != nil},
		{"ReopenKeepsRecords", testReopen, caps.Persistent && openSecond != nil},
		{"ConcurrentIncrements", testConcurrentIncrements, true},
		{"LeaseExclusiveRenewRelease", testLease, true},
		{"LeaseHandover", testLeaseHandover, true},
	}
	for _, tc := range tests {
		if !tc.when {
			continue // not a capability of this implementation
		}
		t.Run(tc.name, func(t *testing.T) { tc.run(t, h) })
	}
}

type harness struct {
	open, openSecond Opener
	caps             Capabilities
}

// first opens a store on a fresh database, closed at cleanup.
func (h *harness) first(t *testing.T) store.Backend {
	t.Helper()
	s := h.open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// second opens another instance on the same database, or returns s when
// the implementation has no second instance.
func (h *harness) second(t *testing.T, s store.Backend) store.Backend {
	t.Helper()
	if h.openSecond == nil {
		return s
	}
	s2 := h.openSecond(t)
	t.Cleanup(func() { _ = s2.Close() })
	return s2
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*Deadline)
	t.Cleanup(cancel)
	return ctx
}

func key(kind, mesh, name string) store.Key { return store.Key{Kind: kind, Mesh: mesh, Name: name} }

func rec(k store.Key, spec string) store.Record { return store.Record{Key: k, Spec: []byte(spec)} }

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// nextEvent waits for the next event that is not a resync marker.
func nextEvent(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	timer := time.NewTimer(Deadline)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed while waiting for an event")
			}
			if e.Op == 0 {
				continue
			}
			return e
		case <-timer.C:
			t.Fatalf("no event within %v", Deadline)
		}
	}
}

// waitFor polls cond until it holds or Deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, Deadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
