package xds

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// fakeTokens counts the JWT-SVIDs it signs.
type fakeTokens struct {
	mu     sync.Mutex
	now    func() time.Time
	issued map[string]int // by audience
	n      int
}

func (f *fakeTokens) VerifyDataplaneToken(context.Context, string) (token.DataplaneClaims, error) {
	return token.DataplaneClaims{}, fmt.Errorf("not used")
}

func (f *fakeTokens) IssueJWTSVID(_ context.Context, mesh string, id spiffeid.ID, aud []string, _ time.Duration) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.issued[aud[0]]++
	return fmt.Sprintf("h.%d.s", f.n), f.now().Add(time.Hour), nil
}

func (f *fakeTokens) MeshJWKS(context.Context, string) ([]byte, error) {
	return []byte(`{"keys":[]}`), nil
}
func (f *fakeTokens) JWTSVIDIssuer() string { return "test" }

type fakeCA struct{}

func (fakeCA) IssueX509SVID(_ context.Context, _ string, id spiffeid.ID) (*ca.SVID, error) {
	return &ca.SVID{ID: id, CertPEM: []byte("cert"), KeyPEM: []byte("key"), RenewAt: time.Now().Add(24 * time.Hour)}, nil
}

func (fakeCA) Bundle(context.Context, string) (*ca.Bundle, error) { return nil, fmt.Errorf("not used") }

// TestRouteTokensRenewal: destination-bound tokens are issued once per
// (identity, destination) for all replicas, reused until half-life,
// renewed together, and forgotten once no connected node renews them.
func TestRouteTokensRenewal(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ft := &fakeTokens{now: clock, issued: map[string]int{}}
	st := memory.New(nil)
	t.Cleanup(func() { st.Close() })
	o, err := Options{Store: st, Tokens: ft, CA: fakeCA{}, Now: clock, Insecure: true}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	in := bigMesh(6, 3) // svc-0000..2, two replicas each, every node binds every VIP
	c, _ := buildAll(t, in)
	iss := newIdentityIssuer(o, c, o.Logger)
	ctx := context.Background()
	nodes := []string{NodeID("default", "dp-00000"), NodeID("default", "dp-00003")} // both serve svc-0000
	tokensOf := func(id string) generate.RouteTokens {
		v, _ := iss.cache.view(id)
		return v.tokens
	}
	for _, id := range nodes {
		if err := iss.ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	first := tokensOf(nodes[0])
	if len(first) != 3 || ft.n != 3 {
		t.Fatalf("%d tokens held, %d signed; want one per destination (3), shared by the replicas", len(first), ft.n)
	}
	for aud, tok := range tokensOf(nodes[1]) {
		if first[aud] != tok {
			t.Fatalf("replicas hold different tokens for %s", aud)
		}
	}

	now = now.Add(29 * time.Minute)
	for _, id := range nodes {
		if err := iss.ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if ft.n != 3 {
		t.Fatalf("%d tokens signed before half-life, want 3", ft.n)
	}
	now = now.Add(2 * time.Minute)
	for _, id := range nodes {
		if err := iss.ensure(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if ft.n != 6 {
		t.Fatalf("%d tokens signed after half-life, want 6", ft.n)
	}
	for aud, tok := range tokensOf(nodes[1]) {
		if first[aud] == tok || tokensOf(nodes[0])[aud] != tok {
			t.Fatalf("token for %s not renewed on both replicas", aud)
		}
	}
	// The outbound filter config carries them.
	v, _ := iss.cache.view(nodes[0])
	if v.outbound == nil || v.outbound.Version != generate.OutboundFilterConfig(v.mesh, v.node, v.tokens).Version {
		t.Fatal("the outbound filter config does not carry the renewed tokens")
	}

	// Nobody renews them: after half-life the sweep forgets them.
	iss.shared.sweep(now)
	if iss.shared.len() != 3 {
		t.Fatalf("%d tokens cached, want 3", iss.shared.len())
	}
	now = now.Add(31 * time.Minute)
	iss.shared.sweep(now)
	if iss.shared.len() != 0 {
		t.Fatalf("%d tokens cached after the sweep, want 0", iss.shared.len())
	}
}

func TestRouteTokensCapped(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ft := &fakeTokens{now: func() time.Time { return now }, issued: map[string]int{}}
	st := memory.New(nil)
	t.Cleanup(func() { st.Close() })
	o, err := Options{Store: st, Tokens: ft, CA: fakeCA{}, Now: ft.now, Insecure: true, MaxRouteTokens: 2}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := buildAll(t, bigMesh(5, 5))
	iss := newIdentityIssuer(o, c, o.Logger)
	id := NodeID("default", "dp-00000")
	if err := iss.ensure(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if v, _ := iss.cache.view(id); len(v.tokens) != 2 || ft.n != 2 {
		t.Fatalf("%d tokens held, %d signed; want the cap, 2", len(v.tokens), ft.n)
	}
}
