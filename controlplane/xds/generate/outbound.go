package generate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ecsmesh/ecsmesh/filter"
)

// Token is a JWT-SVID of a dataplane and its expiry.
type Token struct {
	Value     string
	ExpiresAt time.Time
}

// RouteTokens are a dataplane's JWT-SVIDs by audience: the SPIFFE ID of
// the destination each one is for.
type RouteTokens map[string]Token

// routeList is the JSON of a list of routes without its brackets, for
// splicing, and where each route's object ends in it.
type routeList struct {
	json []byte
	ends []int
}

// encodeRoutes encodes routes as a routeList.
func encodeRoutes(routes []filter.Route) (routeList, error) {
	var l routeList
	for i := range routes {
		b, err := json.Marshal(&routes[i])
		if err != nil {
			return routeList{}, err
		}
		if i > 0 {
			l.json = append(l.json, ',')
		}
		l.json = append(l.json, b...)
		l.ends = append(l.ends, len(l.json))
	}
	return l, nil
}

// appendWithTokens appends l to body, giving each route that attaches a
// token and has a token in toks its token (routes[].token and
// routes[].tokenExpiresAt), and leaving out the routes keep refuses (keep
// nil keeps all). sep is written before the first route appended; it
// reports whether any route was.
func (l routeList) appendWithTokens(body []byte, routes []filter.Route, toks RouteTokens, keep func(*filter.Route) bool, sep bool) ([]byte, bool) {
	if len(toks) == 0 && keep == nil {
		if sep && len(l.json) > 0 {
			body = append(body, ',')
		}
		return append(body, l.json...), len(l.json) > 0
	}
	start, wrote := 0, false
	for i, end := range l.ends {
		if i > 0 {
			start++ // the comma before route i
		}
		r := &routes[i]
		if keep != nil && !keep(r) {
			start = end
			continue
		}
		if sep || wrote {
			body = append(body, ',')
		}
		wrote = true
		tok, ok := toks[r.SpiffeID]
		if !r.AttachToken || r.SpiffeID == "" || !ok || tok.Value == "" {
			body = append(body, l.json[start:end]...)
			start = end
			continue
		}
		body = append(body, l.json[start:end-1]...)
		body = append(body, `,"token":`...)
		body = appendJSONString(body, tok.Value)
		body = append(body, `,"tokenExpiresAt":`...)
		body = strconv.AppendInt(body, tok.ExpiresAt.Unix(), 10)
		body = append(body, '}')
		start = end
	}
	return body, wrote
}

// appendJSONString appends s as a JSON string: as it is when it holds
// only the characters of a compact JWS (the CP's tokens), else escaped.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			v, _ := json.Marshal(s) // a string: cannot fail
			return append(b, v...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// TokenAudiences lists the destinations node n needs a JWT-SVID for, at
// most max of them: the SPIFFE IDs of the routes that attach a token and
// name a single destination identity, among the routes the dataplane can
// reach (its explicit outbounds first, then, when it binds every VIP, the
// mesh's routes in service order). truncated reports that some were left
// out. Routes to a service served under several identities get no token:
// one token for all of them could be replayed from one to the others.
func TokenAudiences(m *Mesh, n *Node, max int) (auds []string, truncated bool) {
	seen := map[string]bool{}
	add := func(routes []filter.Route) bool {
		for i := range routes {
			r := &routes[i]
			if !r.AttachToken || r.SpiffeID == "" || seen[r.SpiffeID] {
				continue
			}
			if len(auds) >= max {
				return false
			}
			seen[r.SpiffeID] = true
			auds = append(auds, r.SpiffeID)
		}
		return true
	}
	if !add(n.ExtraRoutes) {
		return auds, true
	}
	if n.BindOutbounds {
		routes := m.Routes
		if n.Reachable != nil {
			routes = nil
			for _, r := range m.Routes {
				if n.Reaches(r.Cluster) {
					routes = append(routes, r)
				}
			}
		}
		if !add(routes) {
			return auds, true
		}
	}
	return auds, false
}

// OutboundFilterConfig returns the dataplane's outbound filter
// configuration (ECDS): the mesh's routes and its explicit outbounds, each
// route with its destination-bound JWT-SVID from toks (by the route's
// spiffeId), and the dataplane's SPIFFE ID. It carries no trust-domain-wide
// identity.token: a token any callee accepts could be replayed by any
// callee. The resource is versioned now and rendered when packed: it
// carries every route of the mesh, too big to keep per dataplane.
func OutboundFilterConfig(m *Mesh, n *Node, toks RouteTokens) *Resource {
	ident := filter.Identity{SpiffeID: n.SpiffeID}
	filterType, filterPath := m.FilterType, m.FilterPath
	routes, extra := m.routes, n.extra
	meshRoutes, extraRoutes := m.Routes, n.ExtraRoutes
	auds := make([]string, 0, len(toks))
	for aud := range toks {
		auds = append(auds, aud)
	}
	sort.Strings(auds)
	var sb strings.Builder
	for _, aud := range auds {
		sb.WriteString(aud + "\x00" + toks[aud].Value + "\x00")
	}
	var keep func(*filter.Route) bool
	if n.Reachable != nil {
		keep = func(r *filter.Route) bool { return n.Reaches(r.Cluster) }
		reach := slices.Sorted(maps.Keys(n.Reachable))
		sb.WriteString("\x01" + strings.Join(reach, "\x00"))
	}
	version := HashStrings(m.RoutesVersion, string(extra.json), filterType, ident.SpiffeID, sb.String())
	return &Resource{Name: OutboundFilter, Version: version, render: func() (*anypb.Any, error) {
		identJSON, err := json.Marshal(ident)
		if err != nil {
			return nil, fmt.Errorf("generate: encoding identity: %w", err)
		}
		size := len(routes.json) + len(extra.json) + len(identJSON) + 64
		for _, t := range toks {
			size += len(t.Value) + 40
		}
		body := make([]byte, 0, size)
		body = append(body, `{"mode":"outbound","routes":[`...)
		body, wrote := routes.appendWithTokens(body, meshRoutes, toks, keep, false)
		body, _ = extra.appendWithTokens(body, extraRoutes, toks, nil, wrote)
		body = append(body, `],"identity":`...)
		body = append(body, identJSON...)
		body = append(body, '}')
		return filterExtension(OutboundFilter, filterType, filterPath, body)
	}}
}
