package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
)

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // "path: message" prefixes, in order
	}{
		{"empty", ``, []string{": configuration is empty"}},
		{"wrong type", `{"mode":"outbound","routes":{}}`, []string{"routes: must be an array"}},
		{"missing mode", `{}`, []string{"mode: required"}},
		{"every route problem", `{"mode":"outbound","routes":[
			{"vip":"127.0.0.1:0","cluster":"a b","spiffeId":"http://x"},
			{"hosts":["UP.example","bad host"],"cluster":"c"},
			{"vip":"127.0.0.2:80","cluster":"d","hosts":["up.example."]},
			{"vip":"127.0.0.2:80","cluster":"e"},
			{"cluster":"f"}]}`,
			[]string{
				"routes[0].cluster: must be printable",
				"routes[0].spiffeId: not a SPIFFE ID",
				"routes[0].vip: port must be in 1..65535",
				"routes[1].hosts[1]: must be a host name",
				"routes[2].hosts[0]: up.example is also a host of routes[1]",
				"routes[3].vip: 127.0.0.2:80 is also the vip of routes[2]",
				"routes[4]: needs a vip or at least one host",
			}},
		{"identity", `{"mode":"outbound","identity":{"spiffeId":"spiffe://UPPER/x","token":"x.y"}}`,
			[]string{"identity.spiffeId: not a SPIFFE ID", "identity.token: must be a compact JWT"}},
		{"token without exp", `{"mode":"outbound","identity":{"spiffeId":"spiffe://td/x","token":"e30.e30.AA"}}`,
			[]string{"identity.tokenExpiresAt: required when the token has no exp claim"}},
		{"inbound", `{"mode":"inbound","inbound":{"service":"web","default":"Maybe","audiences":[""],
			"permissions":[{"type":"Regex","value":"x","action":"Allow"},
			{"type":"Exact","value":"spiffe://td/a b","action":"Perhaps"},
			{"type":"Prefix","value":"spiffe://TD/","action":"Deny"}]}}`,
			[]string{
				`inbound.default: must be "Allow", "Deny" or "AllowMesh"`,
				`inbound.permissions[0].type: must be "Exact" or "Prefix"`,
				`inbound.permissions[1].action: must be "Allow" or "Deny"`,
				"inbound.permissions[1].value: not a SPIFFE ID",
				`inbound.permissions[2].value: invalid trust domain "TD"`,
				"inbound.audiences[0]: must not be empty",
			}},
		{"AllowMesh needs identity", `{"mode":"inbound","inbound":{"service":"web","default":"AllowMesh"}}`,
			[]string{"inbound.default: AllowMesh needs identity.spiffeId"}},
		{"jwks", `{"mode":"inbound","identity":{"spiffeId":"spiffe://td/w"},"inbound":{"service":"web","jwks":{"keys":[
			{"kty":"EC","crv":"P-256","kid":"a","x":"AAAA","y":"AAAA"},
			{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"},
			{"kty":"RSA","kid":"r","n":"x","e":"AQAB"}]}}}`,
			[]string{
				"inbound.jwks.keys[0]: x and y must be 32-byte",
				"inbound.jwks.keys[1].kid: required",
				"inbound.jwks.keys: has no EC P-256 signing key",
			}},
		{"unknown fields", `{"mode":"outbound","extra":1,"routes":[{"cluster":"c","vip":"127.0.0.1","Cluster":"x"}],
			"inbound":{"permissions":[{"type":"Exact","valeu":"x"}]}}`,
			[]string{"extra: unknown field", "inbound.permissions[0].valeu: unknown field", "routes[0].Cluster: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error %v, want *ConfigError", err)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Fatalf("got %d problems %v, want %d", len(ce.Problems), ce.Problems, len(tt.want))
			}
			for i, p := range ce.Problems {
				got := p.Path + ": " + p.Message
				if !strings.HasPrefix(got, tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, tt.want[i])
				}
			}
			if !strings.HasPrefix(err.Error(), "filter: invalid config: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("Error() = %q, want one line with the package prefix", err)
			}
		})
	}
}

func TestParseValidRoundTrip(t *testing.T) {
	cfg := Config{
		Mode: ModeOutbound,
		Routes: []Route{
			{VIP: "127.1.0.5:8080", Hosts: []string{"redis.mesh.local"}, Cluster: "redis",
				SpiffeID: "spiffe://default.mesh.local/workload/redis", AttachToken: true,
				Token: "e30.eyJleHAiOjQxMDI0NDQ4MDB9.AA", TokenExpiresAt: 4102444800},
			{VIP: "::1", Hosts: []string{"[::1]:80", "Six.Example"}, Cluster: "six"},
		},
		Identity: &Identity{SpiffeID: "spiffe://default.mesh.local/workload/web"},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	lookups := []struct{ dest, authority, want string }{
		{"127.1.0.5:8080", "", "redis"},
		{"[::1]:9999", "", "six"},
		{"", "[::1]:80", "six"},
		{"", "six.example:443", "six"},
		{"", "SIX.EXAMPLE.", "six"},
		{"", "six.example.:1", "six"},
		{"", "[::1]:81", ""},
		{"", ":80", ""},
		{"", "six.example:", ""},
		{"127.1.0.5:8081", "", ""},
	}
	for _, l := range lookups {
		got, _ := c.Lookup(l.dest, l.authority)
		if got != l.want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", l.dest, l.authority, got, l.want)
		}
	}
}

func TestInboundConfigRoundTrip(t *testing.T) {
	keys := filtertest.NewKeys()
	cfg := Config{
		Mode:     ModeInbound,
		Identity: &Identity{SpiffeID: filtertest.Web},
		Inbound: &Inbound{
			Service:     "web",
			Default:     DefaultAllowMesh,
			JWKS:        filtertest.JWKS(keys.Good),
			Audiences:   []string{"default.mesh.local", "alb"},
			JWTIssuer:   filtertest.Issuer,
			Permissions: []Permission{{Type: MatchExact, Value: filtertest.Evil, Action: ActionDeny}},
		},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	if c.Authorize(filtertest.Evil) || !c.Authorize(filtertest.API) || c.Authorize(filtertest.Partner) {
		t.Error("AllowMesh with an exact Deny decided wrongly")
	}
	tok := keys.Good.Token(filtertest.Claims(filtertest.API, "alb", filtertest.Valid))
	if sub, reason := c.VerifyToken(tok, 1); sub != filtertest.API {
		t.Errorf("token for audience alb refused: %s", reason)
	}
	// Explicit audiences replace the default (this sidecar's SPIFFE ID).
	tok = keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid))
	if _, reason := c.VerifyToken(tok, 1); reason != ReasonTokenAudience {
		t.Errorf("token for web with explicit audiences: reason %q", reason)
	}
}

// TestInboundConfigWithoutIssuer: a configuration without jwtIssuer (an
// older or hand-written one) still parses and does not check iss; the
// audience defaults to the sidecar's own SPIFFE ID.
func TestInboundConfigWithoutIssuer(t *testing.T) {
	keys := filtertest.NewKeys()
	c, err := Parse([]byte(`{"mode":"inbound","identity":{"spiffeId":"` + filtertest.Web + `"},
	  "inbound":{"service":"web","default":"Allow","jwks":` + string(filtertest.JWKS(keys.Good)) + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claims map[string]any
		reason string
	}{
		{filtertest.With(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid), "iss", nil), ""},
		{filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid), ""},
		{filtertest.Claims(filtertest.API, filtertest.TD, filtertest.Valid), ReasonTokenAudience},
	} {
		if _, reason := c.VerifyToken(keys.Good.Token(tc.claims), 1); reason != tc.reason {
			t.Errorf("claims %v: reason %q, want %q", tc.claims, reason, tc.reason)
		}
	}
}
