package token

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// countingStore counts the reads of the store.
type countingStore struct {
	store.Store
	lists, gets atomic.Int64
}

func (c *countingStore) List(ctx context.Context, kind string, o store.ListOptions) ([]store.Record, error) {
	c.lists.Add(1)
	return c.Store.List(ctx, kind, o)
}

func (c *countingStore) Get(ctx context.Context, k store.Key) (store.Record, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, k)
}

func kidsOf(t *testing.T, doc []byte) map[string]bool {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		if k.Algorithm != "ES256" || k.Use != "sig" || !k.IsPublic() || k.KeyID == "" {
			t.Fatalf("bad JWK %+v", k)
		}
		out[k.KeyID] = true
	}
	return out
}

func sameKIDs(a map[string]bool, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, k := range b {
		if !a[k] {
			return false
		}
	}
	return true
}

// TestJWKSPublishesOnlyJWTSVIDKeys: the public JWKS holds the JWT-SVID
// keys of every mesh and never a dataplane-token key.
func TestJWKSPublishesOnlyJWTSVIDKeys(t *testing.T) {
	f := newFixture(t, nil)
	f.issue(t, "default", "web-1") // creates default's dataplane-token key
	doc, err := f.iss.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := kidsOf(t, doc)
	dpKey := f.currentKey(t, "default", KeyDataplaneToken).kid
	if got[dpKey] {
		t.Fatal("the public JWKS publishes a dataplane-token key")
	}
	if !sameKIDs(got, f.currentKey(t, "default", KeyJWTSVID).kid, f.currentKey(t, "other", KeyJWTSVID).kid) {
		t.Fatalf("public JWKS kids %v, want the JWT-SVID keys of default and other", got)
	}
}

// TestMeshJWKS: a mesh's key set verifies its own JWT-SVIDs (current and
// retired keys) and nothing signed for another mesh or another purpose.
func TestMeshJWKS(t *testing.T) {
	f := newFixture(t, time.Now)
	ctx := context.Background()
	web := mustID(t, "spiffe://default.mesh.local/workload/web")
	old, _, err := f.iss.IssueJWTSVID(ctx, "default", web, []string{"aud"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.iss.RotateKeys(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	fresh, _, err := f.iss.IssueJWTSVID(ctx, "default", web, []string{"aud"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := f.iss.IssueJWTSVID(ctx, "other", mustID(t, "spiffe://other.mesh.local/workload/web"), []string{"aud"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	dpToken, _ := f.issue(t, "default", "web-1")

	doc, err := f.iss.MeshJWKS(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(t, doc); !sameKIDs(got, headerKID(t, old), headerKID(t, fresh)) {
		t.Fatalf("default's JWKS kids %v, want its current and retired JWT-SVID keys only", got)
	}
	bundle, err := jwtbundle.Parse(spiffeid.RequireTrustDomainFromString("default.mesh.local"), doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{old, fresh} {
		if _, err := jwtsvid.ParseAndValidate(raw, bundle, []string{"aud"}); err != nil {
			t.Fatalf("own JWT-SVID refused: %v", err)
		}
	}
	if _, err := jwtsvid.ParseAndValidate(foreign, bundle, []string{"aud"}); err == nil {
		t.Fatal("another mesh's JWT-SVID verified with default's JWKS")
	}
	if kidsOf(t, doc)[headerKID(t, dpToken)] {
		t.Fatal("a dataplane-token key is in the mesh's JWKS")
	}
	if _, err := f.iss.MeshJWKS(ctx, "Bad_Mesh"); err == nil {
		t.Fatal("JWKS of an invalid mesh name")
	}
}

func TestMeshJWKSDropsExpiredRetiredKeys(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.iss.JWKS(ctx); err != nil { // creates the keys and caches the document
		t.Fatal(err)
	}
	oldKID := f.currentKey(t, "default", KeyJWTSVID).kid
	if _, err := f.iss.RotateKeys(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(MaxTokenTTL + retireSlack + time.Second)
	for name, get := range map[string]func() ([]byte, error){
		"mesh":   func() ([]byte, error) { return f.iss.MeshJWKS(ctx, "default") },
		"public": func() ([]byte, error) { return f.iss.JWKS(ctx) },
	} {
		doc, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if kidsOf(t, doc)[oldKID] {
			t.Errorf("%s JWKS still publishes a key past its verification window", name)
		}
	}
}

// TestJWKSIsCached: the unauthenticated well-known endpoint reads the
// store once per rebuild, not per request, and a rotation is published at
// once.
func TestJWKSIsCached(t *testing.T) {
	f := newFixture(t, nil)
	cs := &countingStore{Store: f.store}
	iss, err := New(Config{Store: cs, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	get := func() map[string]bool {
		t.Helper()
		resp, err := http.Get(srv.URL + JWKSPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return kidsOf(t, set)
	}
	first := get()
	reads := cs.lists.Load() + cs.gets.Load()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := iss.JWKS(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	get()
	if n := cs.lists.Load() + cs.gets.Load(); n != reads {
		t.Fatalf("201 JWKS requests made %d store reads, want none after the first build", n-reads)
	}

	// A rotation through this Issuer is published at once.
	kids, err := iss.RotateKeys(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	after := get()
	if !after[kids[1]] || len(after) != len(first)+1 {
		t.Fatalf("after rotation: %v, want %v plus the new key %s", after, first, kids[1])
	}

	// A rotation by another replica: published within the cache's age
	// (at once with Run, see TestRunRepublishesJWKS).
	kids, err = f.iss.RotateKeys(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	if get()[kids[1]] {
		t.Fatal("cache not used")
	}
	f.clock.Advance(publicMaxAge)
	if !get()[kids[1]] {
		t.Fatal("another replica's rotation not published after the cache's age")
	}
}

func TestRunRepublishesJWKS(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	replica, _ := New(Config{Store: f.store, Now: f.clock.Now})
	done := make(chan error, 1)
	go func() { done <- replica.Run(ctx) }()
	if _, err := replica.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	// Run subscribes asynchronously: rotate until the replica follows.
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids, err := f.iss.RotateKeys(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		doc, err := replica.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kidsOf(t, doc)[kids[1]] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica still publishes the JWKS from before the rotation")
		}
	}
	cancel()
	<-done
}

func TestJWKSWaitRespectsContext(t *testing.T) {
	f := newFixture(t, nil)
	f.iss.public.build <- struct{}{} // a build in progress
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.iss.JWKS(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the caller's cancellation", err)
	}
	<-f.iss.public.build
	if _, err := f.iss.JWKS(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestIssueJWTSVIDOutsideTrustDomain: a mesh's key signs only identities
// of its own trust domain.
func TestIssueJWTSVIDOutsideTrustDomain(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct{ mesh, id string }{
		{"default", "spiffe://other.mesh.local/workload/web"},
		{"default", "spiffe://default.mesh.local.evil.example/workload/web"},
		{"other", "spiffe://default.mesh.local/workload/web"},
	} {
		t.Run(tc.mesh+" "+tc.id, func(t *testing.T) {
			raw, _, err := f.iss.IssueJWTSVID(context.Background(), tc.mesh, mustID(t, tc.id), []string{"x"}, 0)
			if err == nil {
				t.Fatalf("mesh %s signed a JWT-SVID for %s: %s", tc.mesh, tc.id, raw)
			}
			if !errors.Is(err, ErrForeignTrustDomain) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestJWTSVIDIssuerClaim(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"", DefaultJWTSVIDIssuer},
		{"https://cp.example.com/", "https://cp.example.com"},
	} {
		f := newFixture(t, nil)
		iss, err := New(Config{Store: f.store, Now: f.clock.Now, IssuerURL: tc.url})
		if err != nil {
			t.Fatal(err)
		}
		if iss.JWTSVIDIssuer() != tc.want {
			t.Fatalf("JWTSVIDIssuer() = %q, want %q", iss.JWTSVIDIssuer(), tc.want)
		}
		raw, _, err := iss.IssueJWTSVID(context.Background(), "default", mustID(t, "spiffe://default.mesh.local/workload/web"), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
			t.Fatal(err)
		}
		if c.Issuer != tc.want {
			t.Fatalf("iss = %q, want %q", c.Issuer, tc.want)
		}
	}
}
