package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

func mustRanges(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	r, err := ParseRanges(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newAlloc(t testing.TB, st store.Store, cidr string) *Allocator {
	t.Helper()
	a, err := NewAllocator(st, mustRanges(t, cidr), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func want(mesh string, svcs ...string) map[ServiceKey]bool {
	m := map[ServiceKey]bool{}
	for _, s := range svcs {
		m[ServiceKey{mesh, s}] = true
	}
	return m
}

func TestParseRangesAndLoopback(t *testing.T) {
	tests := []struct {
		in       string
		n        int
		parseErr bool
		loopOK   bool
	}{
		{"127.1.0.0/16", 1, false, true},
		{" 127.1.0.0/16 , 127.2.0.0/24 ,", 2, false, true},
		{"241.0.0.0/8", 1, false, false},
		{"127.0.0.0/7", 1, false, false},
		{"fd00::/64", 1, false, false},
		{"nonsense", 0, true, true},
		{"", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRanges(tt.in)
			if (err != nil) != tt.parseErr {
				t.Fatalf("ParseRanges(%q) err = %v", tt.in, err)
			}
			if len(r) != tt.n {
				t.Fatalf("got %d ranges", len(r))
			}
			if err := CheckLoopback("KUMA_IPAM_MESH_SERVICE_CIDR", r); (err == nil) != tt.loopOK {
				t.Fatalf("CheckLoopback = %v", err)
			}
		})
	}
}

func FuzzParseRanges(f *testing.F) {
	for _, s := range []string{"127.1.0.0/16", "a,b", "127.0.0.1/32,,fd00::/8", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRanges(s)
		if err != nil {
			return
		}
		for _, p := range r {
			if !p.IsValid() {
				t.Fatalf("invalid prefix from %q", s)
			}
		}
		_ = CheckLoopback("X", r)
	})
}

func TestSyncStableAndSkipsReservedAddresses(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	a := newAlloc(t, st, "127.0.0.0/29")
	got, err := a.Sync(ctx, want("default", "web", "redis"))
	if err != nil {
		t.Fatal(err)
	}
	// sorted: redis first; .0 (network) and .1 (the apps' localhost) skipped
	if got[ServiceKey{"default", "redis"}].String() != "127.0.0.2" || got[ServiceKey{"default", "web"}].String() != "127.0.0.3" {
		t.Fatalf("got %v", got)
	}
	// A second allocator (restart / other replica) keeps them.
	b := newAlloc(t, st, "127.0.0.0/29")
	again, err := b.Sync(ctx, want("default", "web", "redis", "db"))
	if err != nil {
		t.Fatal(err)
	}
	if again[ServiceKey{"default", "web"}] != got[ServiceKey{"default", "web"}] || again[ServiceKey{"default", "db"}].String() != "127.0.0.4" {
		t.Fatalf("got %v", again)
	}
	l, err := List(ctx, st, "default")
	if err != nil || len(l) != 3 {
		t.Fatalf("List = %v, %v", l, err)
	}
}

func TestRetiredNotReusedUntilExhausted(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	// /29: .2 .. .6 usable (5 addresses)
	a := newAlloc(t, st, "127.0.0.0/29")
	if _, err := a.Sync(ctx, want("m", "a", "b")); err != nil { // a=.2 b=.3
		t.Fatal(err)
	}
	if _, err := a.Sync(ctx, want("m", "b")); err != nil { // a retired
		t.Fatal(err)
	}
	if _, err := Lookup(ctx, st, "m", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a still has a VIP: %v", err)
	}
	steps := []struct {
		add  string
		want string
	}{
		{"c", "127.0.0.4"}, {"d", "127.0.0.5"}, {"e", "127.0.0.6"},
		{"f", "127.0.0.2"}, // exhausted: reuse the retired one
	}
	live := []string{"b"}
	for _, s := range steps {
		live = append(live, s.add)
		got, err := a.Sync(ctx, want("m", live...))
		if err != nil {
			t.Fatal(err)
		}
		if v := got[ServiceKey{"m", s.add}].String(); v != s.want {
			t.Fatalf("%s got %s, want %s", s.add, v, s.want)
		}
	}
	live = append(live, "g")
	got, err := a.Sync(ctx, want("m", live...))
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("want ErrExhausted, got %v", err)
	}
	if len(got) != 5 {
		t.Fatalf("others must keep their VIPs: %v", got)
	}
}

func TestRetiredReusedOldestFirst(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	a := newAlloc(t, st, "127.0.0.0/30") // .2 only (.0 network, .1 localhost, .3 broadcast)
	for i, s := range []string{"a", "b", "c"} {
		got, err := a.Sync(ctx, want("m", s))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got[ServiceKey{"m", s}].String() != "127.0.0.2" {
			t.Fatalf("got %v", got)
		}
	}
}

func TestConcurrentAllocatorsMemory(t *testing.T) {
	testConcurrent(t, memory.New(nil), memory.New(nil), true)
}

// testConcurrent runs two allocators at once for 500 new services. When
// same is true, st1 is used by both (the second store is unused).
func testConcurrent(t *testing.T, st1, st2 store.Store, same bool) {
	t.Helper()
	if same {
		st2 = st1
	}
	ctx := context.Background()
	w := map[ServiceKey]bool{}
	for i := range 500 {
		w[ServiceKey{"default", fmt.Sprintf("svc-%03d", i)}] = true
	}
	var wg sync.WaitGroup
	results := make([]map[ServiceKey]netip.Addr, 2)
	errs := make([]error, 2)
	for i, st := range []store.Store{st1, st2} {
		a := newAlloc(t, st, "127.1.0.0/16")
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = a.Sync(ctx, w)
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("allocator %d: %v", i, errs[i])
		}
	}
	all, err := ListAll(ctx, st1)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 500 {
		t.Fatalf("%d services have a VIP, want 500", len(all))
	}
	seen := map[netip.Addr]ServiceKey{}
	for k, v := range all {
		if o, dup := seen[v]; dup {
			t.Fatalf("%s given to %v and %v", v, o, k)
		}
		seen[v] = k
		for i := range results {
			if results[i][k] != v {
				t.Fatalf("allocator %d reports %v for %v, stored %v", i, results[i][k], k, v)
			}
		}
	}
	res, err := st1.List(ctx, KindReservation, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 500 {
		t.Fatalf("%d reservations, want 500", len(res))
	}
}

// TestReturningServiceGetsItsVIPBack: a service whose last task went away
// (VIP retired) and that comes back gets the same VIP, as long as no other
// service took the address (retired addresses are reused last), so
// sidecars' listeners and cached DNS answers stay right.
func TestReturningServiceGetsItsVIPBack(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	a := newAlloc(t, st, "127.0.0.0/29")           // .2 .. .6
	first, err := a.Sync(ctx, want("m", "a", "b")) // a=.2 b=.3
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sync(ctx, want("m", "b")); err != nil { // a retired
		t.Fatal(err)
	}
	got, err := a.Sync(ctx, want("m", "b", "c")) // c gets a fresh address, not a's
	if err != nil {
		t.Fatal(err)
	}
	if got[ServiceKey{"m", "c"}] == first[ServiceKey{"m", "a"}] {
		t.Fatalf("c took a's retired address while fresh ones remain: %v", got)
	}
	got, err = a.Sync(ctx, want("m", "a", "b", "c")) // a comes back
	if err != nil {
		t.Fatal(err)
	}
	if got[ServiceKey{"m", "a"}] != first[ServiceKey{"m", "a"}] {
		t.Fatalf("a came back with %s, want its VIP %s", got[ServiceKey{"m", "a"}], first[ServiceKey{"m", "a"}])
	}
	// Another mesh's service of the same name does not take it.
	if _, err := a.Sync(ctx, want("m", "b", "c")); err != nil { // a retired again
		t.Fatal(err)
	}
	got, err = a.Sync(ctx, map[ServiceKey]bool{{"m", "b"}: true, {"m", "c"}: true, {"other", "a"}: true})
	if err != nil {
		t.Fatal(err)
	}
	if got[ServiceKey{"other", "a"}] == first[ServiceKey{"m", "a"}] {
		t.Fatalf("a service of another mesh took m/a's retired VIP")
	}
}

func TestPoolSize(t *testing.T) {
	if got := poolSize([]netip.Prefix{netip.MustParsePrefix("127.1.0.0/16"), netip.MustParsePrefix("127.3.0.0/24")}); got != 65536+256 {
		t.Errorf("poolSize = %v", got)
	}
}

func TestPoolMetrics(t *testing.T) {
	st := memory.New(time.Now)
	a := newAlloc(t, st, "127.1.0.0/24")
	if _, err := a.Ensure(context.Background(), "default", []string{"web", "redis"}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(a.Collector(), "ecsmesh_vip_allocated"); n != 1 {
		t.Fatalf("%d allocated series", n)
	}
	want := "# HELP ecsmesh_vip_allocated VIPs allocated to services, all meshes, read from the store at scrape time.\n# TYPE ecsmesh_vip_allocated gauge\necsmesh_vip_allocated 2\n"
	if err := testutil.CollectAndCompare(a.Collector(), strings.NewReader(want), "ecsmesh_vip_allocated"); err != nil {
		t.Error(err)
	}
}
