package xds

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/store/pgtest"
	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

// replica starts an xDS server named id on st (a store of its own, or one
// shared with other replicas) and returns a harness to connect to it.
func replica(t *testing.T, st store.Store, id string, mod func(*Options)) *harness {
	t.Helper()
	tokens, err := token.New(token.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.New(ca.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, clientTLS := selfSigned(t)
	o := Options{Store: st, Tokens: tokens, CA: authority, TLS: serverTLS, Domain: "mesh.local", InstanceID: id,
		SyncInterval: 100 * time.Millisecond, Grace: 200 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	alloc, err := vip.NewAllocator(st, []netip.Prefix{netip.MustParsePrefix("127.1.0.0/16")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve %s: %v", id, err)
		}
	})
	return &harness{t: t, tokens: tokens, srv: srv, addr: ln.Addr().String(), client: clientTLS, alloc: alloc}
}

func put(t *testing.T, st store.Store, kind, mesh, name, doc string) {
	t.Helper()
	if _, err := store.UpsertRecord(context.Background(), st, store.Record{Key: store.Key{Kind: kind, Mesh: mesh, Name: name}, Spec: []byte(doc)}); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond until it holds or the test's wait runs out.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLivenessPerReplica: a bootstrap-created Dataplane stays while any
// live replica holds a stream for it. Replica B's disconnect used to
// delete it although its stream was live on replica A (last connect won
// the single session record), which let an attacker with a stolen name
// make the victim's Dataplane disappear and be re-created as its own.
func TestLivenessPerReplica(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		st := memory.New(nil)
		t.Cleanup(func() { st.Close() })
		testLivenessPerReplica(t, st, st)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		schema := pgtest.Schema(t, dsn, "xds_liveness_")
		open := func() store.Store {
			st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
			if err != nil {
				t.Fatalf("opening PostgreSQL at %s: %v", pgtest.DSNEnv, err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		testLivenessPerReplica(t, open(), open())
	})
}

func testLivenessPerReplica(t *testing.T, stA, stB store.Store) {
	ctx := context.Background()
	put(t, stA, resource.KindMesh, "", "default", `{"type":"Mesh","name":"default"}`)
	put(t, stA, resource.KindDataplane, "default", "boot-1", `{"type":"Dataplane","mesh":"default","name":"boot-1","labels":{"ecsmesh.io/origin":"bootstrap"},
	  "networking":{"address":"10.0.0.1","inbound":[{"port":15000,"servicePort":8080,"tags":{"kuma.io/service":"web","kuma.io/protocol":"http"}}]}}`)
	a := replica(t, stA, "replica-a", nil)
	b := replica(t, stB, "replica-b", nil)
	tok := a.claimsToken(token.DataplaneClaims{Mesh: "default", Name: "boot-1", SPIFFEID: webID})
	dpKey := store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "boot-1"}
	node := NodeID("default", "boot-1")

	onA := a.connect(node, tok, false, nil)
	onA.waitFor(t, "config on A", func(c *adsclient.Client) bool { return c.Consistent() == nil && endpoints(c, "web") == 1 })
	onB := b.connect(node, tok, false, nil)
	onB.waitFor(t, "config on B", func(c *adsclient.Client) bool { return c.Consistent() == nil && endpoints(c, "web") == 1 })
	onB.cancel()
	// B's grace timer is armed once its disconnect is recorded, and
	// dropped when it fires; then B's expiry check runs once more here.
	bLive := b.srv.live.(*liveness)
	waitUntil(t, "B did not record the disconnect", func() bool {
		bLive.mu.Lock()
		defer bLive.mu.Unlock()
		return bLive.timers[node] != nil
	})
	waitUntil(t, "B's grace timer did not fire", func() bool {
		bLive.mu.Lock()
		defer bLive.mu.Unlock()
		return bLive.timers[node] == nil
	})
	if err := bLive.expire(ctx, "default", "boot-1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := stB.Get(ctx, dpKey); err != nil {
		t.Fatalf("the Dataplane whose stream is live on A after B's disconnect: %v", err)
	}
	if err := streamErr(onA); err != nil {
		t.Fatalf("A's stream ended: %v", err)
	}

	onA.cancel()
	waitUntil(t, "the Dataplane was not removed after its last stream closed", func() bool {
		_, err := stA.Get(ctx, dpKey)
		return errors.Is(err, store.ErrNotFound)
	})
}

// streamErr reports how a running stream ended, or nil while it runs.
func streamErr(r *running) error {
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil {
			return errors.New("ended without error")
		}
		return err
	default:
		return nil
	}
}
