package filter

import "strings"

// Header names the filter reads and writes.
const (
	// HeaderPrefix starts every header the filter owns. The filter removes
	// the ones it owns by name (StripNames); it does not read the whole
	// header map to find others with the prefix, which nothing reads.
	HeaderPrefix = "x-ecsmesh-"
	// HeaderCluster names the Envoy cluster of the route (outbound; the
	// route uses cluster_header).
	HeaderCluster = "x-ecsmesh-cluster"
	// HeaderIdentity carries the caller's JWT-SVID (set outbound on routes
	// with attachToken; read inbound when the peer has no mTLS certificate).
	HeaderIdentity = "x-ecsmesh-identity"
	// HeaderPeerID is the verified SPIFFE ID of the caller (inbound).
	HeaderPeerID = "x-ecsmesh-peer-id"
	// HeaderXFCC is set inbound to "URI=<peer SPIFFE ID>", replacing any value
	// the peer sent.
	HeaderXFCC = "x-forwarded-client-cert"
)

// Properties the adapters read from Envoy.
const (
	// PropertyDestination is the address the app dialed (the VIP).
	PropertyDestination = "destination.address"
	// PropertyPeerURISAN is the URI SAN of the peer's mTLS certificate.
	PropertyPeerURISAN = "connection.uri_san_peer_certificate"
)

// Anonymous names a caller without a verified identity in a 403 body.
const Anonymous = "anonymous"

// Request is what an adapter knows of one request. Only the fields of the
// configured mode are read: Destination and Authority (outbound),
// PeerURISAN and IdentityToken (inbound).
type Request struct {
	// Destination is the destination.address property ("ip:port").
	Destination string
	// Authority is the :authority header.
	Authority string
	// PeerURISAN is the connection.uri_san_peer_certificate property, empty
	// without mTLS.
	PeerURISAN string
	// IdentityToken is the first incoming x-ecsmesh-identity value.
	IdentityToken string
	// Method and Path are :method and :path, read only when
	// NeedsRequestLine (inbound L7 permissions).
	Method, Path string
	// Now is the current time in Unix seconds.
	Now int64
}

// Header is one header the filter sets (replacing any previous value).
type Header struct {
	// Name is lower case.
	Name string
	// Value is the header value.
	Value string
}

// Counter is a set of events of one decision, counted by the adapters.
type Counter uint8

// Events counted per decision.
const (
	// CounterRouted: an outbound request found its route.
	CounterRouted Counter = 1 << iota
	// CounterNoRoute: an outbound request got the local 503.
	CounterNoRoute
	// CounterDenied: an inbound request got the local 403.
	CounterDenied
	// CounterAllowed: an inbound request was let through.
	CounterAllowed
	// CounterTokenAttached: x-ecsmesh-identity was set outbound.
	CounterTokenAttached
	// CounterTokenExpired: the route asked for the token but it has expired.
	CounterTokenExpired
	// CounterShadowDenied: an inbound request was let through by an
	// AllowWithShadowDeny rule alone (it would be refused under Deny).
	CounterShadowDenied
)

// Name returns the metric name of a single counter, e.g. "ecsmesh_filter_routed".
func (c Counter) Name() string {
	switch c {
	case CounterRouted:
		return "ecsmesh_filter_routed"
	case CounterNoRoute:
		return "ecsmesh_filter_no_route"
	case CounterDenied:
		return "ecsmesh_filter_denied"
	case CounterAllowed:
		return "ecsmesh_filter_allowed"
	case CounterTokenAttached:
		return "ecsmesh_filter_token_attached"
	case CounterTokenExpired:
		return "ecsmesh_filter_token_expired"
	case CounterShadowDenied:
		return "ecsmesh_filter_shadow_denied"
	}
	return ""
}

// Counters lists every single counter, in bit order.
func Counters() []Counter {
	return []Counter{CounterRouted, CounterNoRoute, CounterDenied, CounterAllowed,
		CounterTokenAttached, CounterTokenExpired, CounterShadowDenied}
}

// Decision is the outcome of one request. Status 0 means continue with
// Headers() set; otherwise send a local reply with Status and Body.
type Decision struct {
	// Status is 0 (continue), 403 (inbound refused) or 503 (no route).
	Status int
	// Body is the local reply body (text/plain).
	Body string
	// Cluster is the routed cluster (outbound).
	Cluster string
	// PeerID is the verified caller (inbound), empty when anonymous.
	PeerID string
	// Reason says why a JWT-SVID was refused (a Reason* constant), if it was.
	Reason string
	// Events are the counters to increment.
	Events Counter

	headers  [2]Header
	nHeaders int
}

// Headers returns the headers to set when Status is 0.
func (d *Decision) Headers() []Header { return d.headers[:d.nHeaders] }

// Sets reports whether name is one of Headers.
func (d *Decision) Sets(name string) bool {
	for _, h := range d.headers[:d.nHeaders] {
		if h.Name == name {
			return true
		}
	}
	return false
}

func (d *Decision) set(name, value string) {
	d.headers[d.nHeaders] = Header{Name: name, Value: value}
	d.nHeaders++
}

// Headers the filter removes from every request it lets through, before it
// sets its own: the ones it owns, and inbound x-forwarded-client-cert,
// which it replaces.
var (
	stripOutbound = []string{HeaderCluster, HeaderIdentity, HeaderPeerID}
	stripInbound  = []string{HeaderCluster, HeaderIdentity, HeaderPeerID, HeaderXFCC}
)

// StripNames lists the request headers (lower case) whose every incoming
// value an adapter removes from a request it lets through:
// x-ecsmesh-cluster, x-ecsmesh-identity and x-ecsmesh-peer-id, and inbound
// also x-forwarded-client-cert. A header of Decision.Headers needs no
// separate removal when the adapter sets it with a call that replaces every
// value (Envoy's proxy-wasm replace_header_map_value and the Go filter's
// Set both do); [Decision.Sets] tells. A request answered locally
// (Status != 0) is not forwarded and needs no removal. The slice must not
// be modified.
func (c *Compiled) StripNames() []string {
	if c.inbound {
		return stripInbound
	}
	return stripOutbound
}

// Strip reports whether an incoming request header is one of StripNames
// (case-insensitive).
func (c *Compiled) Strip(name string) bool {
	for _, n := range c.StripNames() {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// NeedsIdentityToken reports whether the adapter must read x-ecsmesh-identity.
func (c *Compiled) NeedsIdentityToken() bool { return c.inbound && c.keys != nil }

// NeedsClock reports whether deciding req reads the clock (Request.Now):
// outbound when a token may be attached, inbound only when a JWT-SVID is
// to be verified. Adapters skip the clock otherwise; in Wasm each clock
// read is a host call.
func (c *Compiled) NeedsClock(req *Request) bool {
	if c.inbound {
		return req.PeerURISAN == "" && req.IdentityToken != "" && c.keys != nil
	}
	return c.anyToken
}

// Inbound reports whether the filter runs in inbound mode.
func (c *Compiled) Inbound() bool { return c.inbound }

// Decide fills d for req according to the mode. The outbound path
// allocates nothing; a local reply body is built only on refusal.
func (c *Compiled) Decide(req *Request, d *Decision) {
	*d = Decision{}
	if c.inbound {
		c.decideInbound(req, d)
		return
	}
	c.decideOutbound(req, d)
}

func (c *Compiled) decideOutbound(req *Request, d *Decision) {
	r := c.lookup(req.Destination, req.Authority)
	if r == nil {
		d.Status = 503
		d.Body = noRouteBody(req)
		d.Events = CounterNoRoute
		return
	}
	d.Cluster = r.cluster
	d.Events = CounterRouted
	d.set(HeaderCluster, r.cluster)
	if !r.attachToken {
		return
	}
	tok, exp := r.token, r.tokenExp
	if tok == "" {
		tok, exp = c.token, c.tokenExp
	}
	if tok == "" {
		return
	}
	if req.Now < exp {
		d.set(HeaderIdentity, tok)
		d.Events |= CounterTokenAttached
	} else {
		d.Events |= CounterTokenExpired
	}
}

// noRouteBody renders "ecsmesh: no route to <dest>", <dest> being the
// authority, else the destination address, made safe to echo.
func noRouteBody(req *Request) string {
	dest := req.Authority
	if dest == "" {
		dest = req.Destination
	}
	return "ecsmesh: no route to " + sanitize(dest)
}

// sanitize keeps visible ASCII and caps the length of an echoed value.
func sanitize(s string) string {
	const max = 256
	if s == "" {
		return "unknown destination"
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if s[i] > ' ' && s[i] <= '~' {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// peerEntry caches the decision for one peer SPIFFE ID.
type peerEntry struct {
	allowed bool
	xfcc    string // "URI=<id>"
	body    string // the 403 body
	// l7, when the permissions with rules name the peer, decides each
	// request (allowed is then unused).
	l7 *peerL7
	// shadow: the peer is allowed by AllowWithShadowDeny alone.
	shadow bool
}

// peerL7 is what deciding a request of a peer with L7 permissions needs.
type peerL7 struct {
	perms                   []*l7perm
	baseDeny, baseAllow, df bool
}

func (c *Compiled) decideInbound(req *Request, d *Decision) {
	id := req.PeerURISAN
	if id == "" && req.IdentityToken != "" {
		if c.keys == nil {
			d.Reason = ReasonTokenKey
		} else {
			id, d.Reason = c.VerifyToken(req.IdentityToken, req.Now)
		}
	}
	if id == "" || !ValidPeerID(id) {
		d.Status = 403
		d.Body = "ecsmesh: " + Anonymous + " may not call " + c.service
		d.Events = CounterDenied
		return
	}
	e, ok := c.peers.get(id)
	if !ok {
		e = c.peerEntry(id)
		c.peers.put(id, e)
	}
	allowed := e.allowed
	if e.l7 != nil {
		allowed = e.l7.authorizeRequest(req)
	}
	if !allowed {
		d.Status = 403
		d.Body = e.body
		d.Events = CounterDenied
		return
	}
	d.PeerID = id
	d.Events = CounterAllowed
	if e.shadow {
		d.Events |= CounterShadowDenied
	}
	d.set(HeaderPeerID, id)
	d.set(HeaderXFCC, e.xfcc)
}

// peerEntry computes what is known of a peer before its request.
func (c *Compiled) peerEntry(id string) peerEntry {
	e := peerEntry{allowed: c.Authorize(id), shadow: c.shadowOnly(id)}
	var perms []*l7perm
	for _, p := range c.l7 {
		if p.matchesID(id) {
			perms = append(perms, p)
		}
	}
	if perms != nil {
		e.l7 = &peerL7{perms: perms}
		e.l7.baseDeny, e.l7.baseAllow, e.l7.df = c.authorizeParts(id)
	}
	// Keep only the strings the peer's decisions can need.
	if e.allowed || e.l7 != nil {
		e.xfcc = "URI=" + id
	}
	if !e.allowed || e.l7 != nil {
		e.body = "ecsmesh: " + id + " may not call " + c.service
	}
	return e
}

// authorizeRequest decides a request of a peer some L7 permissions name:
// Deny beats Allow (a rule-less Deny, then a Deny whose rules match), then
// a rule-less Allow or an Allow whose rules match, then the default. A
// request whose path is not canonical is refused.
func (e *peerL7) authorizeRequest(req *Request) bool {
	if e.baseDeny {
		return false
	}
	path := requestPath(req.Path)
	if !canonicalPath(path) {
		return false
	}
	allow := e.baseAllow
	for _, p := range e.perms {
		if p.matches(req.Method, path) {
			if p.deny {
				return false
			}
			allow = true
		}
	}
	return allow || e.df
}
