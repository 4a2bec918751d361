package filter

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
)

func mustParse(tb testing.TB, cfg string) *Compiled {
	tb.Helper()
	c, err := Parse([]byte(cfg))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return c
}

// routesConfig returns an outbound config with n routes.
func routesConfig(n int) string {
	var b strings.Builder
	b.WriteString(`{"mode":"outbound","identity":{"spiffeId":"spiffe://td/w","token":"e30.eyJleHAiOjQxMDI0NDQ4MDB9.AA"},"routes":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"vip":"127.%d.%d.%d:8080","hosts":["svc-%d.mesh.local"],"cluster":"svc-%d","attachToken":%t}`,
			1+i/65536, i/256%256, i%256, i, i, i%2 == 0)
	}
	b.WriteString(`]}`)
	return b.String()
}

func TestOutboundAllocatesNothing(t *testing.T) {
	c := mustParse(t, routesConfig(1000))
	reqs := []Request{
		{Destination: "127.1.3.7:8080", Now: filtertest.Valid - 1},
		{Destination: "127.0.0.1:1", Authority: "svc-999.mesh.local", Now: 1},
		{Destination: "127.0.0.1:1", Authority: "SVC-998.Mesh.Local:8080", Now: 1},
		{Authority: "svc-997.mesh.local.:80", Now: 1},
		{Authority: "svc-996.mesh.local.", Now: 1},
	}
	for _, req := range reqs {
		var d Decision
		allocs := testing.AllocsPerRun(100, func() { c.Decide(&req, &d) })
		if allocs != 0 || d.Status != 0 {
			t.Errorf("Decide(%+v): %v allocs, status %d; want 0 allocs, routed", req, allocs, d.Status)
		}
	}
}

func TestInboundCachedAllocatesNothing(t *testing.T) {
	keys := filtertest.NewKeys()
	c := mustParse(t, keys.InboundConfig())
	tok := keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid))
	for _, req := range []Request{
		{PeerURISAN: filtertest.API, Now: 1},
		{PeerURISAN: filtertest.Evil, Now: 1},
		{IdentityToken: tok, Now: 1},
	} {
		var d Decision
		c.Decide(&req, &d) // warm the caches
		if allocs := testing.AllocsPerRun(100, func() { c.Decide(&req, &d) }); allocs != 0 {
			t.Errorf("Decide(%+v): %v allocs, want 0", req, allocs)
		}
	}
}

func TestTokenVerifiedOnce(t *testing.T) {
	keys := filtertest.NewKeys()
	c := mustParse(t, keys.InboundConfig())
	tok := keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, 2000))
	for i := 0; i < 3; i++ {
		if sub, reason := c.VerifyToken(tok, 1000); sub != filtertest.API || reason != "" {
			t.Fatalf("VerifyToken = %q, %q", sub, reason)
		}
	}
	if c.tokens.len() != 1 {
		t.Fatalf("cache holds %d tokens, want 1", c.tokens.len())
	}
	// Cached, but the time window is checked on every use.
	if _, reason := c.VerifyToken(tok, 2000); reason != ReasonTokenExpired {
		t.Fatalf("reason after expiry = %q, want %q", reason, ReasonTokenExpired)
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	keys := filtertest.NewKeys()
	c := mustParse(t, keys.InboundConfig())
	// The attack: a flood of distinct forged tokens must not grow memory.
	for i := 0; i < TokenCacheSize+50; i++ {
		c.VerifyToken(fmt.Sprintf("e30.e30.%d", i), 1)
	}
	if n := c.tokens.len(); n != TokenCacheSize {
		t.Fatalf("cache holds %d, want %d", n, TokenCacheSize)
	}
	if _, reason := c.VerifyToken(strings.Repeat("a", MaxTokenLen+1), 1); reason != ReasonTokenMalformed {
		t.Fatalf("oversized token reason %q", reason)
	}
}

func TestTokenRefusals(t *testing.T) {
	keys := filtertest.NewKeys()
	c := mustParse(t, keys.InboundConfig())
	claims := func(mut func(map[string]any)) map[string]any {
		m := filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid)
		mut(m)
		return m
	}
	good := keys.Good.Token(claims(func(map[string]any) {}))
	h, p, _ := strings.Cut(good, ".")
	p, s, _ := strings.Cut(p, ".")
	tests := []struct {
		name, tok, reason string
	}{
		{"valid", good, ""},
		{"aud string", keys.Good.Token(claims(func(m map[string]any) { m["aud"] = filtertest.Web })), ""},
		{"no exp", keys.Good.Token(claims(func(m map[string]any) { delete(m, "exp") })), ReasonTokenClaims},
		{"no aud", keys.Good.Token(claims(func(m map[string]any) { delete(m, "aud") })), ReasonTokenClaims},
		{"sub not SPIFFE", keys.Good.Token(claims(func(m map[string]any) { m["sub"] = "admin" })), ReasonTokenClaims},
		{"nbf in future", keys.Good.Token(claims(func(m map[string]any) { m["nbf"] = filtertest.Valid - 10 })), ReasonTokenNotYet},
		{"crit", keys.Good.TokenWithHeader(map[string]any{"alg": "ES256", "kid": "k1", "crit": []string{"x"}},
			claims(func(map[string]any) {})), ReasonTokenAlg},
		{"no kid", keys.Good.TokenWithHeader(map[string]any{"alg": "ES256"}, claims(func(map[string]any) {})), ReasonTokenKey},
		{"swapped payload", h + "." + strings.Split(keys.Good.Token(claims(func(m map[string]any) { m["sub"] = filtertest.Admin })), ".")[1] + "." + s, ReasonTokenSignature},
		{"padded signature", h + "." + p + "." + s + "=", ReasonTokenMalformed},
		{"short signature", h + "." + p + ".AAAA", ReasonTokenSignature},
		{"alg none", filtertest.Unsigned(claims(func(map[string]any) {})), ReasonTokenAlg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, reason := c.VerifyToken(tt.tok, 1000); reason != tt.reason {
				t.Fatalf("reason %q, want %q", reason, tt.reason)
			}
		})
	}
}

func TestAuthorizeDefaults(t *testing.T) {
	tests := []struct {
		def, id string
		want    bool
	}{
		{"Deny", "spiffe://td/a", false},
		{"Allow", "spiffe://elsewhere/a", true},
		{"AllowMesh", "spiffe://td/a", true},
		{"AllowMesh", "spiffe://td.evil/a", false},
		{"AllowMesh", "spiffe://other/a", false},
	}
	for _, tt := range tests {
		c := mustParse(t, `{"mode":"inbound","identity":{"spiffeId":"spiffe://td/w"},"inbound":{"service":"w","default":"`+tt.def+`"}}`)
		if got := c.Authorize(tt.id); got != tt.want {
			t.Errorf("default %s: Authorize(%q) = %v, want %v", tt.def, tt.id, got, tt.want)
		}
	}
	// A Prefix naming a bare trust domain stops at its boundary.
	c := mustParse(t, `{"mode":"inbound","inbound":{"service":"w","permissions":[{"type":"Prefix","value":"spiffe://td","action":"Allow"}]}}`)
	if c.Authorize("spiffe://td.evil/a") || !c.Authorize("spiffe://td/a") {
		t.Error("bare trust domain prefix crossed the trust domain boundary")
	}
}

func TestValidPeerIDMatchesSpiffeid(t *testing.T) {
	for _, s := range []string{
		"spiffe://td", "spiffe://td/", "spiffe://td/a", "spiffe://td/a/", "spiffe://td//a", "spiffe://td/./a",
		"spiffe://td/../a", "spiffe://TD/a", "spiffe://td/A.b-c_d", "spiffe://td:8080/a", "spiffe://", "spiffe:///a",
		"SPIFFE://td/a", "spiffe://td/a%20b", "spiffe://t_d.x-y/a", "spiffe://td/a?b", "spiffe://td/a#b", "spiffe://td/..",
		"spiffe://td/...", "spiffe://user@td/a",
	} {
		_, err := spiffeid.FromString(s)
		if got := ValidPeerID(s); got != (err == nil) {
			t.Errorf("ValidPeerID(%q) = %v, spiffeid says %v", s, got, err)
		}
	}
}

func TestStrip(t *testing.T) {
	out := mustParse(t, `{"mode":"outbound"}`)
	in := mustParse(t, `{"mode":"inbound","inbound":{"service":"w"}}`)
	for _, tt := range []struct {
		name    string
		out, in bool
	}{
		{"x-ecsmesh-cluster", true, true}, {"X-Ecsmesh-Identity", true, true}, {"x-ecsmesh-peer-id", true, true},
		{"x-forwarded-client-cert", false, true}, {"X-Forwarded-Client-Cert", false, true},
		// Headers with the prefix that the mesh neither sets nor reads pass.
		{"x-ecsmesh-anything", false, false}, {"x-ecsmesh-", false, false},
		{"x-ecsmesh", false, false}, {"host", false, false}, {"x-ecsmesh-cluster2", false, false},
	} {
		if out.Strip(tt.name) != tt.out || in.Strip(tt.name) != tt.in {
			t.Errorf("Strip(%q) = %v/%v, want %v/%v", tt.name, out.Strip(tt.name), in.Strip(tt.name), tt.out, tt.in)
		}
	}
}

// TestConcurrentDecide exercises the caches from many goroutines, as the
// Envoy Go filter does (run with -race).
func TestConcurrentDecide(t *testing.T) {
	keys := filtertest.NewKeys()
	c := mustParse(t, keys.InboundConfig())
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = keys.Good.Token(filtertest.Claims(fmt.Sprintf("spiffe://default.mesh.local/w/%d", i), filtertest.Web, filtertest.Valid))
	}
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- true }()
			for i := 0; i < 200; i++ {
				var d Decision
				req := Request{IdentityToken: toks[(g+i)%len(toks)], Now: 1}
				if i%2 == 0 {
					req = Request{PeerURISAN: fmt.Sprintf("spiffe://default.mesh.local/p/%d", i%16), Now: 1}
				}
				c.Decide(&req, &d)
				if d.Status != 0 {
					t.Errorf("refused %+v: %s", req, d.Body)
					return
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}
