package filter

import (
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzParse: no configuration crashes the parser; an accepted one decides
// any request without panicking.
func FuzzParse(f *testing.F) {
	keys := filtertest.NewKeys()
	for _, s := range keys.Suites() {
		f.Add([]byte(s.Config))
	}
	for _, bc := range filtertest.BadConfigs() {
		f.Add([]byte(bc.Config))
	}
	f.Add([]byte(routesConfig(3)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config with an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		var d Decision
		c.Decide(&Request{Destination: "127.1.0.5:8080", Authority: "redis.mesh.local", PeerURISAN: filtertest.API, Now: 1}, &d)
	})
}

// FuzzRequest: hostile request inputs never crash a decision, stripped
// headers never survive, and set header values stay header-safe.
func FuzzRequest(f *testing.F) {
	keys := filtertest.NewKeys()
	out := mustParse(f, keys.OutboundConfig(filtertest.Valid))
	in := mustParse(f, keys.InboundConfig())
	f.Add("127.1.0.5:8080", "redis.mesh.local", "", "", "x-ecsmesh-cluster")
	f.Add("", "BILLING.mesh.local.:1", filtertest.API, keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid)), "X-ECSMESH-PEER-ID")
	f.Add("[::1]:80", "[::1", "spiffe://td/../x", "a.b.c", "x-forwarded-client-cert")
	f.Fuzz(func(t *testing.T, dest, authority, peer, token, header string) {
		req := Request{Destination: dest, Authority: authority, PeerURISAN: peer, IdentityToken: token, Now: 1}
		for _, c := range []*Compiled{out, in} {
			var d Decision
			c.Decide(&req, &d)
			if d.Status != 0 && d.Status != 403 && d.Status != 503 {
				t.Fatalf("status %d", d.Status)
			}
			for _, h := range d.Headers() {
				if !c.Strip(h.Name) {
					t.Fatalf("sets %s without stripping the incoming one", h.Name)
				}
				if !isHeaderValue(strings.ReplaceAll(h.Value, " ", "_")) {
					t.Fatalf("unsafe header value %q", h.Value)
				}
			}
			if strings.ContainsAny(d.Body, "\r\n\x00") {
				t.Fatalf("unsafe body %q", d.Body)
			}
			_ = c.Strip(header)
		}
	})
}

// FuzzValidPeerID: the allocation-free validator agrees with go-spiffe.
func FuzzValidPeerID(f *testing.F) {
	for _, s := range []string{"spiffe://td/a", "spiffe://td", "spiffe://td/./a", "spiffe://TD/a", "spiffe://td/a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > MaxIDLen {
			return
		}
		_, err := spiffeid.FromString(s)
		if got := ValidPeerID(s); got != (err == nil) {
			t.Fatalf("ValidPeerID(%q) = %v, spiffeid: %v", s, got, err)
		}
	})
}

// FuzzVerifyToken: arbitrary tokens are refused without panicking, and a
// refusal never yields a subject.
func FuzzVerifyToken(f *testing.F) {
	keys := filtertest.NewKeys()
	c := mustParse(f, keys.InboundConfig())
	f.Add(keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid)))
	f.Add(filtertest.Unsigned(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid)))
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		sub, reason := c.VerifyToken(tok, 1)
		if (sub == "") == (reason == "") {
			t.Fatalf("sub %q with reason %q", sub, reason)
		}
		if sub != "" && !ValidPeerID(sub) {
			t.Fatalf("invalid subject %q accepted", sub)
		}
	})
}
