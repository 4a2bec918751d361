package filtertest

import (
	"encoding/json"
	"fmt"
)

// SPIFFE IDs used by the table.
const (
	TD      = "default.mesh.local"
	Web     = "spiffe://default.mesh.local/workload/web"
	API     = "spiffe://default.mesh.local/workload/api"
	Evil    = "spiffe://default.mesh.local/workload/evil"
	Batch7  = "spiffe://default.mesh.local/workload/batch-7"
	Batch   = "spiffe://default.mesh.local/workload/batch"
	Admin   = "spiffe://default.mesh.local/workload/admin"
	Partner = "spiffe://other.mesh.local/workload/partner"
	Redis   = "spiffe://default.mesh.local/workload/redis"
	Shadow  = "spiffe://other.mesh.local/workload/shadow"
)

// Suite is one configuration and the requests run against one plugin
// instance built from it.
type Suite struct {
	// Name names the suite.
	Name string
	// Config is the JSON plugin configuration.
	Config string
	// Cases run in order on the same plugin.
	Cases []Case
}

// Case is one request and what must come out of the filter.
type Case struct {
	// Name names the case.
	Name string
	// Destination is the destination.address property ("" = not set).
	Destination string
	// PeerURISAN is the connection.uri_san_peer_certificate property ("" = no mTLS).
	PeerURISAN string
	// Headers are the incoming request headers (lower-case names).
	Headers [][2]string
	// WantStatus is the local reply status, 0 when the request continues.
	WantStatus int
	// WantBody is the local reply body.
	WantBody string
	// WantHeaders are request headers after the filter; "" means absent.
	WantHeaders map[string]string
	// WantCounters are the metric increments of this request; every counter
	// not listed must not move.
	WantCounters []string
	// RepeatedHeaders marks a case whose headers repeat a name the filter
	// removes: it needs a host that removes every value of a header, as
	// Envoy and bench/proxyhost do. The SDK's proxytest emulator removes
	// only the first, so the proxytest runs leave these cases out.
	RepeatedHeaders bool
	// WantReason is the Decision.Reason (why a JWT-SVID was refused),
	// checked on the core only: the adapters do not expose it.
	WantReason string
}

// BadConfig is a configuration the plugin must refuse at start.
type BadConfig struct {
	// Name names the case.
	Name string
	// Config is the JSON.
	Config string
	// WantLog is a substring of the single error log line.
	WantLog string
}

// Keys are the signers the table uses: Good is in the JWKS, Rogue has the
// same kid but another key, Other has a kid absent from the JWKS, OtherMesh
// is another mesh's JWT-SVID key (published, but not in this mesh's JWKS).
type Keys struct {
	Good, Rogue, Other, OtherMesh *Signer
	self                          map[string]string
}

// SelfToken returns the trust-domain-wide JWT-SVID of "web" expiring at exp
// (identity.token; the same string on every call: ECDSA signatures are
// randomized).
func (k *Keys) SelfToken(exp int64) string { return k.token(TD, exp) }

// RouteToken returns the JWT-SVID of "web" for the destination aud only,
// expiring at exp (routes[].token).
func (k *Keys) RouteToken(aud string, exp int64) string { return k.token(aud, exp) }

func (k *Keys) token(aud string, exp int64) string {
	key := fmt.Sprintf("%s %d", aud, exp)
	if t, ok := k.self[key]; ok {
		return t
	}
	t := k.Good.Token(Claims(Web, aud, exp))
	k.self[key] = t
	return t
}

// NewKeys makes fresh keys.
func NewKeys() *Keys {
	return &Keys{Good: NewSigner("k1"), Rogue: NewSigner("k1"), Other: NewSigner("k9"),
		OtherMesh: NewSigner("mesh2-k1"), self: map[string]string{}}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("filtertest: %v", err))
	}
	return string(b)
}

// OutboundConfig returns an outbound configuration whose tokens expire at
// exp: redis has its own token (aud redis), api (attachToken, no token of
// its own) gets identity.token, billing gets none.
func (k *Keys) OutboundConfig(exp int64) string { return k.outboundConfig(exp, exp) }

func (k *Keys) outboundConfig(routeExp, identityExp int64) string {
	return mustJSON(map[string]any{
		"mode": "outbound",
		"routes": []map[string]any{
			{"vip": "127.1.0.5:8080", "hosts": []string{"redis.mesh.local"}, "cluster": "redis",
				"spiffeId": Redis, "attachToken": true,
				"token": k.RouteToken(Redis, routeExp), "tokenExpiresAt": routeExp},
			{"vip": "127.1.0.6:8080", "hosts": []string{"billing.mesh.local", "billing.internal:9090"},
				"cluster": "billing"},
			{"vip": "127.1.0.7:8080", "cluster": "api", "attachToken": true},
		},
		"identity": map[string]any{"spiffeId": Web,
			"token": k.SelfToken(identityExp), "tokenExpiresAt": identityExp},
	})
}

// InboundConfig returns the inbound configuration of service "web".
func (k *Keys) InboundConfig() string {
	return mustJSON(map[string]any{
		"mode":     "inbound",
		"identity": map[string]any{"spiffeId": Web},
		"inbound": map[string]any{
			"service":   "web",
			"default":   "Deny",
			"jwks":      JWKS(k.Good),
			"jwtIssuer": Issuer,
			"permissions": []map[string]string{
				{"type": "Prefix", "value": "spiffe://default.mesh.local/", "action": "Allow"},
				{"type": "Exact", "value": Evil, "action": "Deny"},
				{"type": "Prefix", "value": "spiffe://default.mesh.local/workload/batch-", "action": "Deny"},
				{"type": "Exact", "value": Partner, "action": "Allow"},
			},
		},
	})
}

func noRoute(dest string) string { return "ecsmesh: no route to " + dest }

func denied(id string) string { return "ecsmesh: " + id + " may not call web" }

// Suites returns the behaviour table.
func (k *Keys) Suites() []Suite {
	return []Suite{
		{Name: "outbound", Config: k.OutboundConfig(Valid), Cases: k.outboundCases()},
		{Name: "outbound-expired-token", Config: k.OutboundConfig(Expired), Cases: []Case{{
			Name: "expired token not sent", Destination: "127.1.0.5:8080",
			Headers:      [][2]string{{":authority", "redis.mesh.local"}, {"x-ecsmesh-identity", "app-forged"}},
			WantHeaders:  map[string]string{"x-ecsmesh-cluster": "redis", "x-ecsmesh-identity": ""},
			WantCounters: []string{"ecsmesh_filter_routed", "ecsmesh_filter_token_expired"},
		}, {
			Name: "expired identity token not sent", Destination: "127.1.0.7:8080",
			WantHeaders:  map[string]string{"x-ecsmesh-cluster": "api", "x-ecsmesh-identity": ""},
			WantCounters: []string{"ecsmesh_filter_routed", "ecsmesh_filter_token_expired"},
		}}},
		{Name: "outbound-expired-route-token", Config: k.outboundConfig(Expired, Valid), Cases: []Case{{
			// The trust-domain-wide identity token is not a fallback for
			// a destination-bound one.
			Name: "expired route token not replaced by identity.token", Destination: "127.1.0.5:8080",
			WantHeaders:  map[string]string{"x-ecsmesh-cluster": "redis", "x-ecsmesh-identity": ""},
			WantCounters: []string{"ecsmesh_filter_routed", "ecsmesh_filter_token_expired"},
		}}},
		{Name: "inbound", Config: k.InboundConfig(), Cases: k.inboundCases()},
		{Name: "inbound-l7", Config: k.InboundL7Config(), Cases: l7Cases()},
	}
}

// InboundL7Config is web's inbound with L7 rules: the mesh is allowed
// except /admin and below; Partner may GET /health only.
func (k *Keys) InboundL7Config() string {
	return mustJSON(map[string]any{
		"mode":     "inbound",
		"identity": map[string]any{"spiffeId": Web},
		"inbound": map[string]any{
			"service": "web",
			"default": "Deny",
			"permissions": []map[string]any{
				{"type": "Prefix", "value": "spiffe://default.mesh.local/", "action": "Allow"},
				{"type": "Prefix", "value": "spiffe://default.mesh.local/", "action": "Deny",
					"rules": []any{map[string]any{"match": map[string]any{"paths": []any{map[string]any{"type": "Prefix", "value": "/admin"}}}}}},
				{"type": "Exact", "value": Shadow, "action": "AllowWithShadowDeny"},
				{"type": "Exact", "value": Partner, "action": "Allow",
					"rules": []any{map[string]any{"match": map[string]any{"methods": []string{"GET"}, "paths": []any{map[string]any{"type": "Exact", "value": "/health"}}}}}},
			},
		},
	})
}

func l7Cases() []Case {
	allowed, deny := []string{"ecsmesh_filter_allowed"}, []string{"ecsmesh_filter_denied"}
	ok := func(id string) map[string]string {
		return map[string]string{"x-ecsmesh-peer-id": id, "x-forwarded-client-cert": "URI=" + id}
	}
	req := func(method, path string) [][2]string {
		return [][2]string{{":method", method}, {":path", path}, {":authority", "web"}}
	}
	return []Case{
		{Name: "L7: GET / passes", PeerURISAN: API, Headers: req("GET", "/"), WantHeaders: ok(API), WantCounters: allowed},
		{Name: "L7: GET /admin refused by the Deny rule", PeerURISAN: API, Headers: req("GET", "/admin"),
			WantStatus: 403, WantBody: denied(API), WantCounters: deny},
		{Name: "L7: a path below /admin with a query refused", PeerURISAN: API, Headers: req("POST", "/admin/users?id=1"),
			WantStatus: 403, WantBody: denied(API), WantCounters: deny},
		{Name: "L7: /administrator is not under /admin", PeerURISAN: API, Headers: req("GET", "/administrator"),
			WantHeaders: ok(API), WantCounters: allowed},
		{Name: "L7: a dot-dot path is refused", PeerURISAN: API, Headers: req("GET", "/x/../admin"),
			WantStatus: 403, WantBody: denied(API), WantCounters: deny},
		{Name: "L7: Partner may GET /health", PeerURISAN: Partner, Headers: req("GET", "/health"),
			WantHeaders: ok(Partner), WantCounters: allowed},
		{Name: "L7: Partner may not POST /health", PeerURISAN: Partner, Headers: req("POST", "/health"),
			WantStatus: 403, WantBody: denied(Partner), WantCounters: deny},
		{Name: "AllowWithShadowDeny allows and counts", PeerURISAN: Shadow, Headers: req("GET", "/"),
			WantHeaders: ok(Shadow), WantCounters: []string{"ecsmesh_filter_allowed", "ecsmesh_filter_shadow_denied"}},
		{Name: "an Allow rule as well: not counted as shadow", PeerURISAN: API, Headers: req("GET", "/v1"),
			WantHeaders: ok(API), WantCounters: allowed},
	}
}

func (k *Keys) outboundCases() []Case {
	valid := k.RouteToken(Redis, Valid)
	routed := []string{"ecsmesh_filter_routed"}
	return []Case{
		{Name: "by VIP with the route's token", Destination: "127.1.0.5:8080",
			Headers:      [][2]string{{":authority", "10.0.0.1"}},
			WantHeaders:  map[string]string{"x-ecsmesh-cluster": "redis", "x-ecsmesh-identity": valid},
			WantCounters: []string{"ecsmesh_filter_routed", "ecsmesh_filter_token_attached"}},
		{Name: "route without a token of its own sends identity.token", Destination: "127.1.0.7:8080",
			WantHeaders:  map[string]string{"x-ecsmesh-cluster": "api", "x-ecsmesh-identity": k.SelfToken(Valid)},
			WantCounters: []string{"ecsmesh_filter_routed", "ecsmesh_filter_token_attached"}},
		{Name: "VIP beats authority", Destination: "127.1.0.6:8080",
			Headers:     [][2]string{{":authority", "redis.mesh.local"}},
			WantHeaders: map[string]string{"x-ecsmesh-cluster": "billing", "x-ecsmesh-identity": ""}, WantCounters: routed},
		{Name: "by authority", Destination: "127.0.0.1:16379",
			Headers:     [][2]string{{":authority", "billing.mesh.local"}},
			WantHeaders: map[string]string{"x-ecsmesh-cluster": "billing"}, WantCounters: routed},
		{Name: "by authority with port", Destination: "127.0.0.1:16379",
			Headers:     [][2]string{{":authority", "billing.mesh.local:8080"}},
			WantHeaders: map[string]string{"x-ecsmesh-cluster": "billing"}, WantCounters: routed},
		{Name: "by authority case-insensitive, no destination",
			Headers:     [][2]string{{":authority", "BILLING.Mesh.Local:8080"}},
			WantHeaders: map[string]string{"x-ecsmesh-cluster": "billing"}, WantCounters: routed},
		{Name: "by authority with trailing dot",
			Headers:      [][2]string{{":authority", "redis.mesh.local.:6379"}},
			WantHeaders:  map[string]string{"x-ecsmesh-cluster": "redis"},
			WantCounters: []string{"ecsmesh_filter_routed", "ecsmesh_filter_token_attached"}},
		{Name: "host:port entry exact", Headers: [][2]string{{":authority", "billing.internal:9090"}},
			WantHeaders: map[string]string{"x-ecsmesh-cluster": "billing"}, WantCounters: routed},
		{Name: "host:port entry other port", Destination: "127.0.0.1:9999",
			Headers:    [][2]string{{":authority", "billing.internal:9091"}},
			WantStatus: 503, WantBody: noRoute("billing.internal:9091"),
			WantCounters: []string{"ecsmesh_filter_no_route"}},
		{Name: "no route", Destination: "127.0.0.1:9999",
			Headers:    [][2]string{{":authority", "unknown.mesh.local"}},
			WantStatus: 503, WantBody: noRoute("unknown.mesh.local"),
			WantCounters: []string{"ecsmesh_filter_no_route"}},
		{Name: "no route echo is sanitized", Destination: "127.0.0.1:9999",
			Headers:    [][2]string{{":authority", "<script>x y</script>"}},
			WantStatus: 503, WantBody: noRoute("<script>x?y</script>"),
			WantCounters: []string{"ecsmesh_filter_no_route"}},
		{Name: "no route without authority", Destination: "127.0.0.1:9999",
			WantStatus: 503, WantBody: noRoute("127.0.0.1:9999"),
			WantCounters: []string{"ecsmesh_filter_no_route"}},
		{Name: "spoofed headers from the app are stripped", Destination: "127.1.0.6:8080",
			Headers: [][2]string{{":authority", "billing.mesh.local"}, {"x-ecsmesh-cluster", "admin"},
				{"x-ecsmesh-peer-id", Admin}, {"x-ecsmesh-identity", "forged"}, {"x-ecsmesh-debug", "1"},
				{"x-app", "kept"}},
			// x-ecsmesh-debug is nobody's: the filter removes the headers it
			// owns by name and leaves the rest of the map unread.
			WantHeaders: map[string]string{"x-ecsmesh-cluster": "billing", "x-ecsmesh-peer-id": "",
				"x-ecsmesh-identity": "", "x-ecsmesh-debug": "1", "x-app": "kept"},
			WantCounters: routed},
		{Name: "every value of a repeated spoofed header is removed", Destination: "127.1.0.6:8080", RepeatedHeaders: true,
			Headers: [][2]string{{"x-ecsmesh-cluster", "admin"}, {"x-ecsmesh-cluster", "redis"},
				{"x-ecsmesh-identity", "a"}, {"x-ecsmesh-identity", "b"}, {"x-ecsmesh-peer-id", Admin}, {"x-ecsmesh-peer-id", Admin}},
			WantHeaders: map[string]string{"x-ecsmesh-cluster": "billing", "x-ecsmesh-peer-id": "",
				"x-ecsmesh-identity": ""},
			WantCounters: routed},
		{Name: "spoofed cluster on no route", Destination: "127.0.0.1:9999",
			Headers:    [][2]string{{":authority", "nope"}, {"x-ecsmesh-cluster", "redis"}},
			WantStatus: 503, WantBody: noRoute("nope"),
			WantCounters: []string{"ecsmesh_filter_no_route"}},
	}
}

func (k *Keys) inboundCases() []Case {
	allowed := []string{"ecsmesh_filter_allowed"}
	deny := []string{"ecsmesh_filter_denied"}
	ok := func(id string) map[string]string {
		return map[string]string{"x-ecsmesh-peer-id": id, "x-forwarded-client-cert": "URI=" + id,
			"x-ecsmesh-identity": ""}
	}
	tok := func(s *Signer, sub, aud string, exp int64) [][2]string {
		return [][2]string{{":authority", "web"}, {"x-ecsmesh-identity", s.Token(Claims(sub, aud, exp))}}
	}
	raw := func(claims map[string]any) [][2]string {
		return [][2]string{{":authority", "web"}, {"x-ecsmesh-identity", k.Good.Token(claims)}}
	}
	return []Case{
		{Name: "mTLS allowed by prefix", PeerURISAN: API, WantHeaders: ok(API), WantCounters: allowed},
		{Name: "mTLS exact Deny beats prefix Allow", PeerURISAN: Evil,
			WantStatus: 403, WantBody: denied(Evil), WantCounters: deny},
		{Name: "mTLS prefix Deny beats prefix Allow", PeerURISAN: Batch7,
			WantStatus: 403, WantBody: denied(Batch7), WantCounters: deny},
		{Name: "prefix is not exact", PeerURISAN: Batch, WantHeaders: ok(Batch), WantCounters: allowed},
		{Name: "exact Allow in another trust domain", PeerURISAN: Partner,
			WantHeaders: ok(Partner), WantCounters: allowed},
		{Name: "exact does not match a longer ID", PeerURISAN: Partner + "2",
			WantStatus: 403, WantBody: denied(Partner + "2"), WantCounters: deny},
		{Name: "trust domain confusion", PeerURISAN: "spiffe://default.mesh.local.evil.example/workload/api",
			WantStatus: 403, WantBody: denied("spiffe://default.mesh.local.evil.example/workload/api"),
			WantCounters: deny},
		{Name: "URI SAN that is not a SPIFFE ID", PeerURISAN: "https://evil.example/a b",
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "no mTLS, no token", Headers: [][2]string{{":authority", "web"}},
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "spoofed peer id without mTLS",
			Headers:    [][2]string{{"x-ecsmesh-peer-id", API}, {"x-forwarded-client-cert", "URI=" + API}},
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "spoofed peer id and XFCC replaced", PeerURISAN: API,
			Headers: [][2]string{{"x-ecsmesh-peer-id", Admin}, {"x-forwarded-client-cert", "URI=" + Admin},
				{"x-ecsmesh-cluster", "x"}},
			WantHeaders: map[string]string{"x-ecsmesh-peer-id": API, "x-forwarded-client-cert": "URI=" + API,
				"x-ecsmesh-cluster": ""},
			WantCounters: allowed},
		{Name: "every value of repeated spoofed headers is replaced", PeerURISAN: API, RepeatedHeaders: true,
			Headers: [][2]string{{"x-ecsmesh-peer-id", Admin}, {"x-ecsmesh-peer-id", Admin},
				{"x-forwarded-client-cert", "URI=" + Admin}, {"x-forwarded-client-cert", "URI=" + Admin},
				{"x-ecsmesh-identity", "x"}, {"x-ecsmesh-identity", "y"}},
			WantHeaders: ok(API), WantCounters: allowed},
		{Name: "JWT-SVID without mTLS", Headers: tok(k.Good, API, Web, Valid),
			WantHeaders: ok(API), WantCounters: allowed},
		{Name: "JWT-SVID again (cached)", Headers: tok(k.Good, API, Web, Valid),
			WantHeaders: ok(API), WantCounters: allowed},
		{Name: "JWT-SVID subject denied", Headers: tok(k.Good, Evil, Web, Valid),
			WantStatus: 403, WantBody: denied(Evil), WantCounters: deny},
		{Name: "JWT-SVID expired", Headers: tok(k.Good, API, Web, Expired),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "JWT-SVID wrong key", Headers: tok(k.Rogue, API, Web, Valid),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_signature"},
		{Name: "JWT-SVID unknown kid", Headers: tok(k.Other, API, Web, Valid),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "JWT-SVID wrong audience", Headers: tok(k.Good, API, "other.mesh.local", Valid),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_audience"},
		{Name: "JWT-SVID for the whole trust domain", Headers: tok(k.Good, API, TD, Valid),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_audience"},
		// redis received api's token for itself and replays it to web.
		{Name: "JWT-SVID minted for another service (replay)", Headers: tok(k.Good, API, Redis, Valid),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_audience"},
		{Name: "JWT-SVID with several audiences, web among them",
			Headers:     raw(With(Claims(API, Redis, Valid), "aud", []string{Redis, Web})),
			WantHeaders: ok(API), WantCounters: allowed},
		{Name: "JWT-SVID from another issuer", Headers: raw(With(Claims(API, Web, Valid), "iss", "https://evil.example")),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_issuer"},
		{Name: "JWT-SVID without issuer", Headers: raw(With(Claims(API, Web, Valid), "iss", nil)),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_issuer"},
		{Name: "JWT-SVID with a non-string issuer", Headers: raw(With(Claims(API, Web, Valid), "iss", 7)),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_claims"},
		{Name: "JWT-SVID signed by another mesh's key", Headers: tok(k.OtherMesh, API, Web, Valid),
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny, WantReason: "token_unknown_key"},
		{Name: "JWT alg none", Headers: [][2]string{{"x-ecsmesh-identity", Unsigned(Claims(API, Web, Valid))}},
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "JWT alg HS256", Headers: [][2]string{{"x-ecsmesh-identity",
			k.Good.TokenWithHeader(map[string]any{"alg": "HS256", "kid": "k1"}, Claims(API, Web, Valid))}},
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "JWT garbage", Headers: [][2]string{{"x-ecsmesh-identity", "a.b.c.d"}},
			WantStatus: 403, WantBody: denied("anonymous"), WantCounters: deny},
		{Name: "mTLS wins over a token", PeerURISAN: API, Headers: tok(k.Good, Admin, Web, Valid),
			WantHeaders: ok(API), WantCounters: allowed},
	}
}

// BadConfigs returns configurations the plugin must refuse.
func BadConfigs() []BadConfig {
	return []BadConfig{
		{Name: "not JSON", Config: "{mode: outbound", WantLog: "invalid JSON"},
		{Name: "bad mode", Config: `{"mode":"sideways"}`, WantLog: `mode: must be "outbound" or "inbound"`},
		{Name: "bad vip and missing cluster",
			Config:  `{"mode":"outbound","routes":[{"vip":"nope","hosts":["a"]}]}`,
			WantLog: `routes[0].cluster: required; routes[0].vip: must be ip:port or ip`},
		{Name: "unknown field", Config: `{"mode":"outbound","routes":[{"vip":"127.0.0.1:80","cluster":"c","attachtoken":true}]}`,
			WantLog: "routes[0].attachtoken: unknown field"},
		{Name: "inbound without service", Config: `{"mode":"inbound","inbound":{"default":"Deny"}}`,
			WantLog: "inbound.service: required"},
		{Name: "route token without attachToken",
			Config:  `{"mode":"outbound","routes":[{"vip":"127.0.0.1:80","cluster":"c","token":"a.b.c","tokenExpiresAt":4102444800}]}`,
			WantLog: "routes[0].token: set without attachToken"},
		{Name: "route token not a JWT",
			Config:  `{"mode":"outbound","routes":[{"vip":"127.0.0.1:80","cluster":"c","attachToken":true,"token":"a b"}]}`,
			WantLog: "routes[0].token: must be a compact JWT"},
		{Name: "route token expiry negative",
			Config:  `{"mode":"outbound","routes":[{"vip":"127.0.0.1:80","cluster":"c","attachToken":true,"token":"a.b.c","tokenExpiresAt":-1}]}`,
			WantLog: "routes[0].tokenExpiresAt: must be Unix seconds"},
	}
}
