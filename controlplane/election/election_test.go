package election_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store/pgtest"

	"github.com/ecsmesh/ecsmesh/controlplane/election"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
)

// deadline bounds every wait; the tests assert what happens, never how fast.
const deadline = 15 * time.Second

// flakyLeaser fails every call while broken, as a replica cut off from the
// database would.
type flakyLeaser struct {
	store.Leaser
	broken atomic.Bool
}

var errCutOff = errors.New("cut off from the database")

func (l *flakyLeaser) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if l.broken.Load() {
		return false, errCutOff
	}
	return l.Leaser.AcquireLease(ctx, name, holder, ttl)
}

func (l *flakyLeaser) ReleaseLease(ctx context.Context, name, holder string) error {
	if l.broken.Load() {
		return errCutOff
	}
	return l.Leaser.ReleaseLease(ctx, name, holder)
}

// replica runs one elector and records its leadership.
type replica struct {
	started, stopped atomic.Int32
	leaderCtxDone    atomic.Bool
	stop             context.CancelFunc
	done             chan struct{} // closed when Run returned
	err              error         // what Run returned, once done
}

func runReplica(t *testing.T, l store.Leaser, holder string, ttl time.Duration) *replica {
	t.Helper()
	e, err := election.New(election.Config{Leaser: l, Name: "test-leader", Holder: holder, TTL: ttl, RetryPeriod: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("new elector: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = e.Run(ctx, func(ctx context.Context) {
			r.started.Add(1)
			<-ctx.Done()
			r.leaderCtxDone.Store(true)
		}, func() { r.stopped.Add(1) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(deadline):
			t.Errorf("%s: Run did not return after cancel", holder)
		}
	})
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, deadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backends returns two leasers on one shared store per implementation.
func backends(t *testing.T) map[string]func(t *testing.T) (store.Leaser, store.Leaser) {
	return map[string]func(t *testing.T) (store.Leaser, store.Leaser){
		"memory": func(*testing.T) (store.Leaser, store.Leaser) {
			m := memory.New(nil)
			return m, m
		},
		"postgres": func(t *testing.T) (store.Leaser, store.Leaser) {
			dsn := pgtest.DSN(t)
			schema := freshSchema(t, dsn)
			return openPostgres(t, dsn, schema), openPostgres(t, dsn, schema)
		},
	}
}

func TestHandoverAndRelease(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			la, lb := open(t)
			a := &flakyLeaser{Leaser: la}
			ra := runReplica(t, a, "a", 600*time.Millisecond)
			waitFor(t, "a leads", func() bool { return ra.started.Load() == 1 })

			// b waits with a long TTL: it can only lose the lease by releasing it.
			rb := runReplica(t, lb, "b", time.Minute)
			a.broken.Store(true) // a stops renewing
			waitFor(t, "a steps down", func() bool { return ra.stopped.Load() == 1 })
			if !ra.leaderCtxDone.Load() {
				t.Fatal("a's onStop ran before its leader context was cancelled")
			}
			waitFor(t, "b takes over", func() bool { return rb.started.Load() == 1 })

			a.broken.Store(false)
			rb.stop() // b shuts down: stops its work, then releases the lease
			select {
			case <-rb.done:
				if rb.err != nil {
					t.Fatalf("b's Run: %v", rb.err)
				}
			case <-time.After(deadline):
				t.Fatal("b's Run did not return")
			}
			if rb.stopped.Load() != 1 || !rb.leaderCtxDone.Load() {
				t.Fatalf("b after shutdown: stopped %d times, leader context done %v", rb.stopped.Load(), rb.leaderCtxDone.Load())
			}
			waitFor(t, "a leads again after b released", func() bool { return ra.started.Load() == 2 })
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	m := memory.New(nil)
	tests := []struct {
		name string
		cfg  election.Config
	}{
		{"no leaser", election.Config{Name: "n", Holder: "h", TTL: time.Second}},
		{"no name", election.Config{Leaser: m, Holder: "h", TTL: time.Second}},
		{"no holder", election.Config{Leaser: m, Name: "n", TTL: time.Second}},
		{"zero ttl", election.Config{Leaser: m, Name: "n", Holder: "h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := election.New(tc.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// freshSchema names a schema unique to this test and drops it at cleanup.
func freshSchema(t *testing.T, dsn string) string { return pgtest.Schema(t, dsn, "ecsmesh_test_") }

func openPostgres(t *testing.T, dsn, schema string) store.Leaser {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.WithSchema(schema), postgres.WithMaxConns(4))
	if err != nil {
		t.Fatalf("opening postgres: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
