package filter

import "strings"

// MaxIDLen bounds the length of a peer SPIFFE ID accepted per request.
const MaxIDLen = 2048

// ValidPeerID reports whether s is a syntactically valid SPIFFE ID, with the
// rules of go-spiffe/v2/spiffeid.FromString, without allocating. The request
// path uses it on peer IDs; configured IDs are parsed with spiffeid.
func ValidPeerID(s string) bool {
	const scheme = "spiffe://"
	if len(s) > MaxIDLen || !strings.HasPrefix(s, scheme) {
		return false
	}
	rest := s[len(scheme):]
	i := 0
	for i < len(rest) && rest[i] != '/' {
		ch := rest[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
			return false
		}
		i++
	}
	if i == 0 {
		return false
	}
	path := rest[i:]
	if path == "" {
		return true
	}
	// path: one or more "/segment", segments non-empty, not "." or "..".
	segStart := 1
	for k := 1; k <= len(path); k++ {
		if k == len(path) || path[k] == '/' {
			seg := path[segStart:k]
			if seg == "" || seg == "." || seg == ".." {
				return false
			}
			segStart = k + 1
			continue
		}
		if !isPathChar(path[k]) {
			return false
		}
	}
	return true
}

// isPathChar reports whether ch may appear in a SPIFFE ID path segment.
func isPathChar(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
		ch == '.' || ch == '-' || ch == '_'
}

// Authorize reports whether a caller with this (valid) SPIFFE ID may call
// the local service: a matching Deny beats a matching Allow; without a match
// the inbound default applies. It allocates nothing.
func (c *Compiled) Authorize(id string) bool {
	if _, ok := c.denyExact[id]; ok {
		return false
	}
	for _, p := range c.denyPfx {
		if strings.HasPrefix(id, p) {
			return false
		}
	}
	if _, ok := c.allowExact[id]; ok {
		return true
	}
	for _, p := range c.allowPfx {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	if c.Shadowed(id) {
		return true
	}
	switch c.defaultAct {
	case ActionAllow:
		return true
	case DefaultAllowMesh:
		return strings.HasPrefix(id, c.meshPrefix)
	default:
		return false
	}
}

// authorizeParts splits Authorize for a peer: whether a permission without
// rules denies it, one allows it, and what the default says.
func (c *Compiled) authorizeParts(id string) (deny, allow, def bool) {
	if _, ok := c.denyExact[id]; ok {
		deny = true
	}
	for _, p := range c.denyPfx {
		deny = deny || strings.HasPrefix(id, p)
	}
	if _, ok := c.allowExact[id]; ok {
		allow = true
	}
	for _, p := range c.allowPfx {
		allow = allow || strings.HasPrefix(id, p)
	}
	allow = allow || c.Shadowed(id)
	switch c.defaultAct {
	case ActionAllow:
		def = true
	case DefaultAllowMesh:
		def = strings.HasPrefix(id, c.meshPrefix)
	}
	return deny, allow, def
}

// Shadowed reports whether an AllowWithShadowDeny rule matches id.
func (c *Compiled) Shadowed(id string) bool {
	if _, ok := c.shadowExact[id]; ok {
		return true
	}
	for _, p := range c.shadowPfx {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// shadowOnly reports whether id is allowed by an AllowWithShadowDeny rule
// and by no Allow rule: a request the policy would refuse once the rule
// becomes Deny.
func (c *Compiled) shadowOnly(id string) bool {
	if !c.Shadowed(id) {
		return false
	}
	if _, ok := c.allowExact[id]; ok {
		return false
	}
	for _, p := range c.allowPfx {
		if strings.HasPrefix(id, p) {
			return false
		}
	}
	return true
}
