package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

func testWatchOwn(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	events := must[<-chan store.Event](t, "watch")(s.Watch(ctx))
	k := key("Dataplane", "default", "web-1")
	r := must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(k, `{}`)))
	r = must[store.Record](t, "update")(store.UpdateRecord(ctx, s, r))
	if err := store.DeleteRecord(ctx, s, k, r.Version); err != nil {
		t.Fatalf("delete: %v", err)
	}
	want := []store.Event{{Op: store.Created, Key: k, Version: 1}, {Op: store.Updated, Key: k, Version: 2}, {Op: store.Deleted, Key: k, Version: 2}}
	for i, w := range want {
		if e := nextEvent(t, events); e != w {
			t.Fatalf("event %d = %+v, want %+v", i, e, w)
		}
	}
}

func testWatchEnds(t *testing.T, h *harness) {
	s := h.first(t)
	ctx, cancel := context.WithCancel(ctxFor(t))
	byCancel := must[<-chan store.Event](t, "watch")(s.Watch(ctx))
	byClose := must[<-chan store.Event](t, "watch")(s.Watch(ctxFor(t)))
	cancel()
	waitClosed(t, "after cancel", byCancel)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitClosed(t, "after close", byClose)
}

func waitClosed(t *testing.T, what string, ch <-chan store.Event) {
	t.Helper()
	timer := time.NewTimer(Deadline)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("watch channel not closed %s within %v", what, Deadline)
		}
	}
}

func testClosed(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	k := key("K", "", "a")
	must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(k, `{}`)))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	_, err := s.Get(ctx, k)
	wantErr(t, "get", err, store.ErrClosed)
	_, err = s.List(ctx, "K", store.ListOptions{})
	wantErr(t, "list", err, store.ErrClosed)
	_, err = store.UpsertRecord(ctx, s, rec(k, `{}`))
	wantErr(t, "upsert", err, store.ErrClosed)
	_, err = s.Watch(ctx)
	wantErr(t, "watch", err, store.ErrClosed)
	_, err = s.AcquireLease(ctx, "l", "me", time.Second)
	wantErr(t, "acquire lease", err, store.ErrClosed)
}

func testWatchSecond(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	s2 := h.second(t, s)
	events := must[<-chan store.Event](t, "watch second")(s2.Watch(ctx))
	k := key("Dataplane", "default", "web-1")
	r := must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(k, `{}`)))
	if e := nextEvent(t, events); e.Op != store.Created || e.Key != k || e.Version != 1 {
		t.Fatalf("second instance heard %+v, want creation of %v", e, k)
	}
	must[store.Record](t, "update")(store.UpdateRecord(ctx, s, r))
	if e := nextEvent(t, events); e.Op != store.Updated || e.Key != k || e.Version != 2 {
		t.Fatalf("second instance heard %+v, want update of %v", e, k)
	}
	// The second instance's own write reaches the first one's watchers too.
	own := must[<-chan store.Event](t, "watch first")(s.Watch(ctx))
	must[store.Record](t, "create on second")(store.CreateRecord(ctx, s2, rec(key("K", "", "b"), `{}`)))
	if e := nextEvent(t, own); e.Key != key("K", "", "b") {
		t.Fatalf("first instance heard %+v", e)
	}
}

func testReopen(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	r := must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(key("Mesh", "", "default"), `{"kept":true}`)))
	if _, err := s.AcquireLease(ctx, "lease", "a", time.Hour); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i := range 2 { // migrations run again on each open and must not fail
		s2 := h.second(t, s)
		assertSame(t, fmt.Sprintf("record after reopen %d", i), must[store.Record](t, "get")(s2.Get(ctx, r.Key)), r)
		if ok, err := s2.AcquireLease(ctx, "lease", "b", time.Hour); err != nil || ok {
			t.Fatalf("lease after reopen: ok=%v err=%v, want still held by a", ok, err)
		}
		if err := s2.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
}

type counter struct {
	N int `json:"n"`
}

func testConcurrentIncrements(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	s2 := h.second(t, s)
	k := key("Counter", "", "c")
	must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(k, `{"n":0}`)))
	const workers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		st := s
		if w%2 == 1 {
			st = s2
		}
		wg.Go(func() {
			for range each {
				if err := increment(ctx, st, k); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
	got := must[store.Record](t, "get")(s.Get(ctx, k))
	var c counter
	if err := json.Unmarshal(got.Spec, &c); err != nil {
		t.Fatalf("decoding counter: %v", err)
	}
	if c.N != workers*each || got.Version != 1+workers*each {
		t.Fatalf("counter = %d at version %d, want %d at version %d (lost update)", c.N, got.Version, workers*each, 1+workers*each)
	}
}

// increment does one read-modify-write, retrying on ErrConflict.
func increment(ctx context.Context, s store.Store, k store.Key) error {
	for {
		r, err := s.Get(ctx, k)
		if err != nil {
			return err
		}
		var c counter
		if err := json.Unmarshal(r.Spec, &c); err != nil {
			return err
		}
		c.N++
		r.Spec, _ = json.Marshal(c)
		_, err = store.UpdateRecord(ctx, s, r)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
}

func testLease(t *testing.T, h *harness) {
	a, ctx := h.first(t), ctxFor(t)
	b := h.second(t, a)
	acquire := func(l store.Leaser, holder string, want bool) {
		t.Helper()
		ok, err := l.AcquireLease(ctx, "cp-leader", holder, time.Minute)
		if err != nil || ok != want {
			t.Fatalf("AcquireLease(%s) = %v, %v; want %v", holder, ok, err, want)
		}
	}
	acquire(a, "a", true)
	acquire(b, "b", false)
	acquire(a, "a", true) // renewal
	acquire(b, "b", false)
	if err := b.ReleaseLease(ctx, "cp-leader", "b"); err != nil { // not the holder: no effect
		t.Fatalf("release by non-holder: %v", err)
	}
	acquire(b, "b", false)
	ok, err := b.AcquireLease(ctx, "other-lease", "b", time.Minute) // leases are independent
	if err != nil || !ok {
		t.Fatalf("other lease: %v, %v", ok, err)
	}
	if err := a.ReleaseLease(ctx, "cp-leader", "a"); err != nil {
		t.Fatalf("release: %v", err)
	}
	acquire(b, "b", true)
	acquire(a, "a", false)
}

func testLeaseHandover(t *testing.T, h *harness) {
	a, ctx := h.first(t), ctxFor(t)
	b := h.second(t, a)
	const ttl = 500 * time.Millisecond
	if ok, err := a.AcquireLease(ctx, "cp-leader", "a", ttl); err != nil || !ok {
		t.Fatalf("a acquires: %v, %v", ok, err)
	}
	// a stops renewing; b gets the lease once it expires.
	waitFor(t, "b takes over the expired lease", func() bool {
		ok, err := b.AcquireLease(ctx, "cp-leader", "b", time.Minute)
		if err != nil {
			t.Fatalf("b acquires: %v", err)
		}
		return ok
	})
	if ok, err := a.AcquireLease(ctx, "cp-leader", "a", ttl); err != nil || ok {
		t.Fatalf("a renews after handover: %v, %v; want refused", ok, err)
	}
}
