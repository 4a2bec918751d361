package filter

import (
	"fmt"
	"strings"
)

// Path match types of PermissionMatch.Paths.
const (
	PathExact  = "Exact"
	PathPrefix = "Prefix"
)

// PermissionRule narrows a Permission to some requests (L7): the
// permission applies to a request of its caller only when some rule
// matches it.
type PermissionRule struct {
	Match PermissionMatch `json:"match"`
}

// PermissionMatch matches a request by method and path; an empty list
// matches anything.
type PermissionMatch struct {
	// Methods are HTTP methods (upper case); any one must be the
	// request's.
	Methods []string `json:"methods,omitempty"`
	// Paths are path matches; any one must match the request's path
	// (without its query).
	Paths []PathMatch `json:"paths,omitempty"`
}

// PathMatch is an Exact path or a Prefix: "/admin" matches "/admin" and
// "/admin/..." but not "/administrator"; a prefix ending in "/" matches
// anything that starts with it.
type PathMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// l7perm is a compiled Permission with rules.
type l7perm struct {
	exact, prefix string // one is set
	deny          bool
	rules         []compiledRule
}

type compiledRule struct {
	methods []string
	paths   []PathMatch
}

func (p *l7perm) matchesID(id string) bool {
	if p.exact != "" {
		return id == p.exact
	}
	return strings.HasPrefix(id, p.prefix)
}

// matches reports whether some rule matches method and path.
func (p *l7perm) matches(method, path string) bool {
	for i := range p.rules {
		r := &p.rules[i]
		if len(r.methods) > 0 && !containsString(r.methods, method) {
			continue
		}
		if len(r.paths) == 0 {
			return true
		}
		for _, pm := range r.paths {
			if pathMatches(pm, path) {
				return true
			}
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func pathMatches(pm PathMatch, path string) bool {
	if pm.Type == PathExact {
		return path == pm.Value
	}
	if !strings.HasPrefix(path, pm.Value) {
		return false
	}
	return len(path) == len(pm.Value) || strings.HasSuffix(pm.Value, "/") || path[len(pm.Value)] == '/'
}

// compileRules validates the rules of a permission at path.
func compileRules(p *problems, path string, rules []PermissionRule) []compiledRule {
	out := make([]compiledRule, 0, len(rules))
	for i, r := range rules {
		rp := fmt.Sprintf("%s.rules[%d].match", path, i)
		if len(r.Match.Methods) == 0 && len(r.Match.Paths) == 0 {
			p.add(rp, "must set methods, paths or both")
		}
		for j, m := range r.Match.Methods {
			if !isMethod(m) {
				p.add(fmt.Sprintf("%s.methods[%d]", rp, j), "must be an upper-case HTTP method, not %q", m)
			}
		}
		for j, pm := range r.Match.Paths {
			pp := fmt.Sprintf("%s.paths[%d]", rp, j)
			if pm.Type != PathExact && pm.Type != PathPrefix {
				p.add(pp+".type", "must be %q or %q, not %q", PathExact, PathPrefix, pm.Type)
			}
			if !strings.HasPrefix(pm.Value, "/") || !canonicalPath(pm.Value) {
				p.add(pp+".value", "must be an absolute path without query, '..', '.', '//' or percent-encoding, not %q", pm.Value)
			}
		}
		out = append(out, compiledRule{methods: r.Match.Methods, paths: r.Match.Paths})
	}
	return out
}

func isMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

// canonicalPath reports whether path (without query) is in the form the
// rules are written in: no empty, "." or ".." segments, no backslash and
// no percent-encoding, so that one resource has one spelling. A request
// path that is not refuses the request when L7 rules apply (Envoy
// normalizes paths on ecsmesh's inbound listeners first, so a legitimate
// client is not affected).
func canonicalPath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%', '\\', '?', '#':
			return false
		case '/':
			if i+1 < len(path) && path[i+1] == '/' {
				return false
			}
			seg := path[i+1:]
			if j := strings.IndexByte(seg, '/'); j >= 0 {
				seg = seg[:j]
			}
			if seg == "." || seg == ".." {
				return false
			}
		}
	}
	return true
}

// requestPath is the path of a :path value without its query.
func requestPath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// NeedsRequestLine reports whether Decide reads Request.Method and
// Request.Path (some inbound permission has rules): adapters read :method
// and :path only then.
func (c *Compiled) NeedsRequestLine() bool { return len(c.l7) > 0 }
