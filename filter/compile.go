package filter

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Cache sizes of a Compiled configuration.
const (
	// TokenCacheSize bounds the cache of verified JWT-SVIDs.
	TokenCacheSize = 1024
	// PeerCacheSize bounds the cache of authorization decisions per peer ID.
	PeerCacheSize = 4096
)

// route is a compiled Route.
type route struct {
	cluster     string
	spiffeID    string
	attachToken bool
	token       string // the route's own JWT-SVID, else Compiled.token
	tokenExp    int64
}

// Compiled is a validated configuration ready for the request path. It is
// safe for concurrent use.
type Compiled struct {
	mode     string
	inbound  bool
	byVIP    map[string]*route // "ip:port" in netip canonical form
	byIP     map[string]*route // "ip" (route for any port)
	byHost   map[string]*route // lower-case "host" or "host:port"
	nRoutes  int
	selfID   string
	token    string
	tokenExp int64
	anyToken bool // some route may attach a token

	service    string
	denyExact  map[string]struct{}
	allowExact map[string]struct{}
	denyPfx    []string
	allowPfx   []string
	// shadowExact and shadowPfx are the AllowWithShadowDeny rules: they
	// allow, and a request they alone allow is counted.
	shadowExact map[string]struct{}
	shadowPfx   []string
	// l7 are the permissions with rules, decided per request.
	l7         []*l7perm
	defaultAct string
	meshPrefix string // "spiffe://<td>/" of selfID, for AllowMesh
	keys       map[string]*ecdsa.PublicKey
	audiences  []string
	issuer     string // required iss, when set

	tokens *lru[tokenEntry]
	peers  *lru[peerEntry]
}

// Mode returns "outbound" or "inbound".
func (c *Compiled) Mode() string { return c.mode }

// RouteCount returns the number of routes.
func (c *Compiled) RouteCount() int { return c.nRoutes }

// Compile validates a decoded configuration and builds the lookup tables. It
// returns a *ConfigError listing every problem with its JSON path.
func Compile(cfg *Config) (*Compiled, error) {
	var p problems
	c := &Compiled{
		mode:        cfg.Mode,
		byVIP:       map[string]*route{},
		byIP:        map[string]*route{},
		byHost:      map[string]*route{},
		denyExact:   map[string]struct{}{},
		allowExact:  map[string]struct{}{},
		shadowExact: map[string]struct{}{},
		defaultAct:  ActionDeny,
		tokens:      newLRU[tokenEntry](TokenCacheSize),
		peers:       newLRU[peerEntry](PeerCacheSize),
	}
	switch cfg.Mode {
	case ModeOutbound:
	case ModeInbound:
		c.inbound = true
	case "":
		p.add("mode", "required: %q or %q", ModeOutbound, ModeInbound)
	default:
		p.add("mode", "must be %q or %q, not %q", ModeOutbound, ModeInbound, cfg.Mode)
	}
	c.compileIdentity(&p, cfg.Identity)
	c.compileRoutes(&p, cfg.Routes)
	c.anyToken = c.token != "" || c.anyToken
	if cfg.Inbound != nil {
		c.compileInbound(&p, cfg.Inbound)
	} else if c.inbound {
		p.add("inbound", "required in inbound mode")
	}
	if len(p.list) > 0 {
		return nil, &ConfigError{Problems: p.list}
	}
	return c, nil
}

func (c *Compiled) compileIdentity(p *problems, id *Identity) {
	if id == nil {
		return
	}
	if id.SpiffeID == "" {
		p.add("identity.spiffeId", "required")
	} else if sid, err := spiffeid.FromString(id.SpiffeID); err != nil {
		p.add("identity.spiffeId", "not a SPIFFE ID: %v", err)
	} else {
		c.selfID = sid.String()
		c.meshPrefix = sid.TrustDomain().IDString() + "/"
	}
	c.token, c.tokenExp = compileToken(p, "identity", id.Token, id.TokenExpiresAt)
}

// compileToken validates a token of ours and its expiry (path.token and
// path.tokenExpiresAt) and returns them, the expiry read from the token's
// exp claim when not given.
func compileToken(p *problems, path, tok string, exp int64) (string, int64) {
	if exp < 0 {
		p.add(path+".tokenExpiresAt", "must be Unix seconds, not negative")
	}
	if tok == "" {
		return "", 0
	}
	if !isTokenText(tok) {
		p.add(path+".token", "must be a compact JWT (three base64url parts)")
		return "", 0
	}
	if exp == 0 {
		e, ok := unverifiedExp(tok)
		if !ok {
			p.add(path+".tokenExpiresAt", "required when the token has no exp claim")
		}
		exp = e
	}
	return tok, exp
}

// isTokenText reports whether s looks like a compact JWS and is safe to send
// as a header value.
func isTokenText(s string) bool {
	if len(s) > MaxTokenLen || strings.Count(s, ".") != 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return false
		}
	}
	return true
}

// unverifiedExp reads the exp claim of our own token (not verified: the
// control plane gave it to us).
func unverifiedExp(tok string) (int64, bool) {
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, false
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp <= 0 {
		return 0, false
	}
	return int64(claims.Exp), true
}

func (c *Compiled) compileRoutes(p *problems, routes []Route) {
	owner := map[string]int{} // lookup key → route index, for duplicate reports
	for i := range routes {
		r := &routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		cr := &route{cluster: r.Cluster, attachToken: r.AttachToken}
		if r.Cluster == "" {
			p.add(path+".cluster", "required")
		} else if !isHeaderValue(r.Cluster) {
			p.add(path+".cluster", "must be printable ASCII without spaces")
		}
		if r.SpiffeID != "" {
			if sid, err := spiffeid.FromString(r.SpiffeID); err != nil {
				p.add(path+".spiffeId", "not a SPIFFE ID: %v", err)
			} else {
				cr.spiffeID = sid.String()
			}
		}
		cr.token, cr.tokenExp = compileToken(p, path, r.Token, r.TokenExpiresAt)
		if cr.token != "" && !r.AttachToken {
			p.add(path+".token", "set without attachToken: the token would never be sent")
		}
		c.anyToken = c.anyToken || cr.token != ""
		if r.VIP == "" && len(r.Hosts) == 0 {
			p.add(path, "needs a vip or at least one host")
		}
		if r.VIP != "" {
			c.addVIP(p, owner, path+".vip", r.VIP, i, cr)
		}
		for j, h := range r.Hosts {
			c.addHost(p, owner, fmt.Sprintf("%s.hosts[%d]", path, j), h, i, cr)
		}
		c.nRoutes++
	}
}

func (c *Compiled) addVIP(p *problems, owner map[string]int, path, vip string, i int, r *route) {
	var key string
	var table map[string]*route
	if ap, err := netip.ParseAddrPort(vip); err == nil {
		if ap.Port() == 0 {
			p.add(path, "port must be in 1..65535")
			return
		}
		key, table = ap.String(), c.byVIP
	} else if a, err := netip.ParseAddr(vip); err == nil && a.Zone() == "" {
		key, table = a.String(), c.byIP
	} else {
		p.add(path, "must be ip:port or ip, not %q", vip)
		return
	}
	if prev, dup := owner["vip "+key]; dup {
		p.add(path, "%s is also the vip of routes[%d]", key, prev)
		return
	}
	owner["vip "+key] = i
	table[key] = r
}

func (c *Compiled) addHost(p *problems, owner map[string]int, path, h string, i int, r *route) {
	key, ok := normalizeHost(h)
	if !ok {
		p.add(path, "must be a host name, optionally with :port, not %q", h)
		return
	}
	if prev, dup := owner["host "+key]; dup {
		if prev != i {
			p.add(path, "%s is also a host of routes[%d]", key, prev)
		}
		return
	}
	owner["host "+key] = i
	c.byHost[key] = r
}

// normalizeHost lower-cases a configured host[:port] and drops a trailing dot.
func normalizeHost(h string) (string, bool) {
	h = strings.ToLower(h)
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", false
		}
	}
	host = strings.TrimSuffix(host, ".")
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() {
			return "", false
		}
		host = "[" + a.String() + "]"
	} else if host == "" || len(host) > 253 {
		return "", false
	} else {
		for k := 0; k < len(host); k++ {
			ch := host[k]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
				return "", false
			}
		}
	}
	if port != "" {
		return host + ":" + port, true
	}
	return host, true
}

// isHeaderValue reports whether s is non-empty visible ASCII.
func isHeaderValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func (c *Compiled) compileInbound(p *problems, in *Inbound) {
	c.service = in.Service
	if in.Service == "" {
		if c.inbound {
			p.add("inbound.service", "required in inbound mode")
		}
	} else if !isHeaderValue(in.Service) {
		p.add("inbound.service", "must be printable ASCII without spaces")
	}
	switch in.Default {
	case "", ActionDeny:
		c.defaultAct = ActionDeny
	case ActionAllow, ActionAllowWithShadowDeny:
		c.defaultAct = ActionAllow
	case DefaultAllowMesh:
		c.defaultAct = DefaultAllowMesh
		if c.meshPrefix == "" {
			p.add("inbound.default", "AllowMesh needs identity.spiffeId (its trust domain is the mesh)")
		}
	default:
		p.add("inbound.default", "must be %q, %q or %q, not %q", ActionAllow, ActionDeny, DefaultAllowMesh, in.Default)
	}
	for i, perm := range in.Permissions {
		c.addPermission(p, fmt.Sprintf("inbound.permissions[%d]", i), perm)
	}
	for i, aud := range in.Audiences {
		if aud == "" {
			p.add(fmt.Sprintf("inbound.audiences[%d]", i), "must not be empty")
		}
	}
	c.audiences = in.Audiences
	if len(c.audiences) == 0 && c.selfID != "" {
		c.audiences = []string{c.selfID}
	}
	if in.JWTIssuer != "" && !isHeaderValue(in.JWTIssuer) {
		p.add("inbound.jwtIssuer", "must be printable ASCII without spaces")
	}
	c.issuer = in.JWTIssuer
	if len(in.JWKS) > 0 && string(in.JWKS) != "null" {
		c.keys = parseJWKS(p, "inbound.jwks", in.JWKS)
		if len(c.audiences) == 0 {
			p.add("inbound.audiences", "required with jwks when identity.spiffeId is not set")
		}
	}
}

func (c *Compiled) addPermission(p *problems, path string, perm Permission) {
	var deny bool
	switch perm.Action {
	case ActionAllow, ActionAllowWithShadowDeny:
	case ActionDeny:
		deny = true
	default:
		p.add(path+".action", "must be %q or %q, not %q", ActionAllow, ActionDeny, perm.Action)
	}
	var l7 *l7perm
	if len(perm.Rules) > 0 {
		l7 = &l7perm{deny: deny, rules: compileRules(p, path, perm.Rules)}
	}
	switch perm.Type {
	case MatchExact:
		sid, err := spiffeid.FromString(perm.Value)
		if err != nil {
			p.add(path+".value", "not a SPIFFE ID: %v", err)
			return
		}
		switch {
		case l7 != nil:
			l7.exact = sid.String()
			c.l7 = append(c.l7, l7)
		case deny:
			c.denyExact[sid.String()] = struct{}{}
		case perm.Action == ActionAllowWithShadowDeny:
			c.shadowExact[sid.String()] = struct{}{}
		default:
			c.allowExact[sid.String()] = struct{}{}
		}
	case MatchPrefix:
		pfx, err := normalizePrefix(perm.Value)
		if err != nil {
			p.add(path+".value", "%v", err)
			return
		}
		switch {
		case l7 != nil:
			l7.prefix = pfx
			c.l7 = append(c.l7, l7)
		case deny:
			c.denyPfx = append(c.denyPfx, pfx)
		case perm.Action == ActionAllowWithShadowDeny:
			c.shadowPfx = append(c.shadowPfx, pfx)
		default:
			c.allowPfx = append(c.allowPfx, pfx)
		}
	default:
		p.add(path+".type", "must be %q or %q, not %q", MatchExact, MatchPrefix, perm.Type)
	}
}

// normalizePrefix validates a Prefix value. A value naming only a trust
// domain ("spiffe://td" or "spiffe://td/") becomes "spiffe://td/", so that it
// cannot match "spiffe://td.evil.example/...".
func normalizePrefix(v string) (string, error) {
	const scheme = "spiffe://"
	if !strings.HasPrefix(v, scheme) {
		return "", fmt.Errorf("must start with %q", scheme)
	}
	rest := v[len(scheme):]
	tdName, path, hasPath := strings.Cut(rest, "/")
	td, err := spiffeid.TrustDomainFromString(tdName)
	if err != nil || td.Name() != tdName {
		return "", fmt.Errorf("invalid trust domain %q", tdName)
	}
	for i := 0; i < len(path); i++ {
		if !isPathChar(path[i]) && path[i] != '/' {
			return "", fmt.Errorf("invalid character %q in path", path[i])
		}
	}
	if !hasPath {
		return v + "/", nil
	}
	return v, nil
}
