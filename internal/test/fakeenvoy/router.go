package fakeenvoy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	// The typed configs ecsmesh's listeners carry, for protojson to
	// read them back from a snapshot.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// The stand-in router: what Envoy's router filter decides for one request
// against a RouteConfiguration, for the shapes ecsmesh generates. It picks
// the virtual host (exact domain, then the longest "*.suffix", then the
// longest "prefix*", then "*"), then the first route whose match matches:
//
//   - path: prefix (on the whole :path, query included), path (exact, query
//     removed), path_separated_prefix (query removed; the prefix followed by
//     "/" or the end), safe_regex (a full match, query removed);
//   - headers, all of which must match: string_match (exact, prefix,
//     suffix, contains, safe_regex, ignore_case) or present_match, each
//     with invert_match. A missing header matches only present_match:
//     false, or present_match: true inverted (Envoy's rule);
//   - query_parameters: string_match or present_match.
//
// The matched route's action gives the cluster: cluster, cluster_header
// (no header: 503, as Envoy's "no cluster"), or weighted_clusters picked
// as Envoy picks (a random value modulo the total weight, walking the
// clusters in order), with the random source injected. A redirect or a
// direct response gives its status; no matching route gives 404.
//
// Anything else (RDS, runtime fractions, other match kinds, weighted
// entries naming a header) is refused by NewRouter rather than guessed:
// a stand-in that silently routes differently from Envoy would make the
// demo lie. Retries, timeouts and header mutations are not simulated; the
// decision returns the matched route so callers can show them.

// Decision is what the router did with a request.
type Decision struct {
	// Route is the matched route (nil: none matched).
	Route *routev3.Route
	// Index is the route's position in its virtual host (-1: none).
	Index int
	// Cluster is the upstream cluster, "" when the request is answered
	// locally (Status).
	Cluster string
	// Status is the local answer: 404 no route, 503 no cluster, a
	// redirect's or direct response's code; 0 when routed to Cluster.
	Status int
}

// Router routes requests over one RouteConfiguration.
type Router struct {
	hosts []*routev3.VirtualHost
	rand  func() uint64
	res   map[string]*regexp.Regexp
}

// RouteConfigOf returns the inline route_config of the listener's HTTP
// connection manager (first filter chain), as ecsmesh delivers it.
func RouteConfigOf(l *listenerv3.Listener) (*routev3.RouteConfiguration, error) {
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc == nil || !tc.MessageIs(&hcmv3.HttpConnectionManager{}) {
				continue
			}
			hcm := &hcmv3.HttpConnectionManager{}
			if err := tc.UnmarshalTo(hcm); err != nil {
				return nil, fmt.Errorf("fakeenvoy: listener %s: %w", l.GetName(), err)
			}
			rc := hcm.GetRouteConfig()
			if rc == nil {
				return nil, fmt.Errorf("fakeenvoy: listener %s: the HTTP connection manager has no inline route_config (RDS is not supported by the stand-in router)", l.GetName())
			}
			return rc, nil
		}
	}
	return nil, fmt.Errorf("fakeenvoy: listener %s has no HTTP connection manager", l.GetName())
}

// NewRouter checks that every route of rc has a shape the stand-in router
// decides as Envoy does and compiles its regular expressions. rand is the
// random source of weighted_clusters (e.g. a seeded math/rand's Uint64).
func NewRouter(rc *routev3.RouteConfiguration, rand func() uint64) (*Router, error) {
	if rand == nil {
		return nil, errors.New("fakeenvoy: NewRouter needs a random source for weighted_clusters")
	}
	r := &Router{hosts: rc.GetVirtualHosts(), rand: rand, res: map[string]*regexp.Regexp{}}
	for _, vh := range r.hosts {
		for i, rt := range vh.GetRoutes() {
			if err := r.check(rt); err != nil {
				return nil, fmt.Errorf("fakeenvoy: virtual host %s, route %d (%s): %w", vh.GetName(), i, rt.GetName(), err)
			}
		}
	}
	return r, nil
}

func (r *Router) check(rt *routev3.Route) error {
	m := rt.GetMatch()
	if m.GetRuntimeFraction() != nil || m.GetGrpc() != nil || m.GetTlsContext() != nil || len(m.GetDynamicMetadata()) > 0 ||
		(m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()) {
		return errors.New("match fields beyond path, headers and query_parameters are not supported")
	}
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix, *routev3.RouteMatch_Path, *routev3.RouteMatch_PathSeparatedPrefix:
	case *routev3.RouteMatch_SafeRegex:
		if err := r.compile(p.SafeRegex.GetRegex()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("path specifier %T is not supported", p)
	}
	for _, h := range m.GetHeaders() {
		switch s := h.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_PresentMatch:
		case *routev3.HeaderMatcher_StringMatch:
			if err := r.checkString(s.StringMatch); err != nil {
				return fmt.Errorf("header %s: %w", h.GetName(), err)
			}
		default:
			return fmt.Errorf("header %s: matcher %T is not supported", h.GetName(), s)
		}
		if h.GetTreatMissingHeaderAsEmpty() {
			return fmt.Errorf("header %s: treat_missing_header_as_empty is not supported", h.GetName())
		}
	}
	for _, q := range m.GetQueryParameters() {
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *routev3.QueryParameterMatcher_PresentMatch:
		case *routev3.QueryParameterMatcher_StringMatch:
			if err := r.checkString(s.StringMatch); err != nil {
				return fmt.Errorf("query parameter %s: %w", q.GetName(), err)
			}
		default:
			return fmt.Errorf("query parameter %s: matcher %T is not supported", q.GetName(), s)
		}
	}
	switch a := rt.GetAction().(type) {
	case *routev3.Route_Redirect, *routev3.Route_DirectResponse:
	case *routev3.Route_Route:
		switch c := a.Route.GetClusterSpecifier().(type) {
		case *routev3.RouteAction_Cluster, *routev3.RouteAction_ClusterHeader:
		case *routev3.RouteAction_WeightedClusters:
			total := uint64(0)
			for _, w := range c.WeightedClusters.GetClusters() {
				if w.GetName() == "" {
					return errors.New("weighted_clusters: only entries naming a cluster are supported")
				}
				total += uint64(w.GetWeight().GetValue())
			}
			if total == 0 {
				return errors.New("weighted_clusters: the weights sum to 0 (Envoy refuses this)")
			}
		default:
			return fmt.Errorf("cluster specifier %T is not supported", c)
		}
	default:
		return fmt.Errorf("action %T is not supported", a)
	}
	return nil
}

func (r *Router) checkString(s *matcherv3.StringMatcher) error {
	switch p := s.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact, *matcherv3.StringMatcher_Prefix, *matcherv3.StringMatcher_Suffix, *matcherv3.StringMatcher_Contains:
		return nil
	case *matcherv3.StringMatcher_SafeRegex:
		return r.compile(p.SafeRegex.GetRegex())
	default:
		return fmt.Errorf("string matcher %T is not supported", p)
	}
}

// compile keeps a full-match form of an RE2 expression (Go's regexp is
// RE2, as Envoy's safe_regex).
func (r *Router) compile(expr string) error {
	if _, ok := r.res[expr]; ok {
		return nil
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return fmt.Errorf("safe_regex %q: %w", expr, err)
	}
	r.res[expr] = re
	return nil
}

// Route decides one request. headers are the request's headers with
// lower-case names, pseudo-headers included (":path" and ":authority" are
// read for the path and the virtual host).
func (r *Router) Route(headers map[string]string) Decision {
	vh := r.virtualHost(headers[":authority"])
	if vh == nil {
		return Decision{Index: -1, Status: 404}
	}
	for i, rt := range vh.GetRoutes() {
		if !r.matches(rt.GetMatch(), headers) {
			continue
		}
		d := Decision{Route: rt, Index: i}
		switch a := rt.GetAction().(type) {
		case *routev3.Route_Redirect:
			d.Status = redirectStatus(a.Redirect.GetResponseCode())
		case *routev3.Route_DirectResponse:
			d.Status = int(a.DirectResponse.GetStatus())
		case *routev3.Route_Route:
			d.Cluster = r.cluster(a.Route, headers)
			if d.Cluster == "" {
				d.Status = 503
			}
		}
		return d
	}
	return Decision{Index: -1, Status: 404}
}

func (r *Router) virtualHost(authority string) *routev3.VirtualHost {
	// As Envoy without strip_*_host_port: the authority as sent, port
	// included, case-insensitively.
	host := strings.ToLower(authority)
	var best *routev3.VirtualHost
	bestRank, bestLen := 0, -1
	for _, vh := range r.hosts {
		for _, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			rank, n := 0, len(d)
			switch {
			case d == host:
				return vh
			case d == "*":
				rank, n = 1, 0
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]) && len(host) > len(d)-1:
				rank = 3
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]) && len(host) > len(d)-1:
				rank = 2
			default:
				continue
			}
			if rank > bestRank || (rank == bestRank && n > bestLen) {
				best, bestRank, bestLen = vh, rank, n
			}
		}
	}
	return best
}

func (r *Router) matches(m *routev3.RouteMatch, headers map[string]string) bool {
	full := headers[":path"]
	path, query, _ := strings.Cut(full, "?")
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		if !strings.HasPrefix(full, p.Prefix) {
			return false
		}
	case *routev3.RouteMatch_Path:
		if path != p.Path {
			return false
		}
	case *routev3.RouteMatch_PathSeparatedPrefix:
		rest, ok := strings.CutPrefix(path, p.PathSeparatedPrefix)
		if !ok || (rest != "" && rest[0] != '/') {
			return false
		}
	case *routev3.RouteMatch_SafeRegex:
		if !r.res[p.SafeRegex.GetRegex()].MatchString(path) {
			return false
		}
	default:
		return false
	}
	for _, h := range m.GetHeaders() {
		v, ok := headers[strings.ToLower(h.GetName())]
		if !r.headerMatches(h, v, ok) {
			return false
		}
	}
	if len(m.GetQueryParameters()) > 0 {
		q, err := url.ParseQuery(query)
		if err != nil {
			return false
		}
		for _, qm := range m.GetQueryParameters() {
			vals, ok := q[qm.GetName()]
			switch s := qm.GetQueryParameterMatchSpecifier().(type) {
			case *routev3.QueryParameterMatcher_PresentMatch:
				if ok != s.PresentMatch {
					return false
				}
			case *routev3.QueryParameterMatcher_StringMatch:
				if !ok || !r.stringMatches(s.StringMatch, vals[0]) {
					return false
				}
			}
		}
	}
	return true
}

// headerMatches is Envoy's HeaderMatcher: a missing header matches only a
// present_match equal to invert_match (present: false, or present: true
// inverted); a present one matches when the matcher's result differs from
// invert_match.
func (r *Router) headerMatches(h *routev3.HeaderMatcher, value string, present bool) bool {
	if !present {
		pm, ok := h.GetHeaderMatchSpecifier().(*routev3.HeaderMatcher_PresentMatch)
		return ok && pm.PresentMatch == h.GetInvertMatch()
	}
	var m bool
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		m = s.PresentMatch
	case *routev3.HeaderMatcher_StringMatch:
		m = r.stringMatches(s.StringMatch, value)
	}
	return m != h.GetInvertMatch()
}

func (r *Router) stringMatches(s *matcherv3.StringMatcher, v string) bool {
	fold := s.GetIgnoreCase()
	norm := func(x string) string {
		if fold {
			return strings.ToLower(x)
		}
		return x
	}
	switch p := s.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return norm(v) == norm(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(norm(v), norm(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(norm(v), norm(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(norm(v), norm(p.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		return r.res[p.SafeRegex.GetRegex()].MatchString(v)
	}
	return false
}

// cluster picks the upstream cluster of a route action; "" when there is
// none (a cluster_header the request lacks).
func (r *Router) cluster(a *routev3.RouteAction, headers map[string]string) string {
	switch c := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		return c.Cluster
	case *routev3.RouteAction_ClusterHeader:
		return headers[strings.ToLower(c.ClusterHeader)]
	case *routev3.RouteAction_WeightedClusters:
		ws := c.WeightedClusters.GetClusters()
		total := uint64(0)
		for _, w := range ws {
			total += uint64(w.GetWeight().GetValue())
		}
		// Envoy: selected = random % total; the cluster whose
		// [begin, end) range of weights holds it.
		selected, end := r.rand()%total, uint64(0)
		for _, w := range ws {
			end += uint64(w.GetWeight().GetValue())
			if selected < end {
				return w.GetName()
			}
		}
	}
	return ""
}

func redirectStatus(c routev3.RedirectAction_RedirectResponseCode) int {
	switch c {
	case routev3.RedirectAction_FOUND:
		return 302
	case routev3.RedirectAction_SEE_OTHER:
		return 303
	case routev3.RedirectAction_TEMPORARY_REDIRECT:
		return 307
	case routev3.RedirectAction_PERMANENT_REDIRECT:
		return 308
	default:
		return 301
	}
}

// ReadListener reads the listener called name from a snapshot file the
// stand-in wrote (WriteJSON).
func ReadListener(path, name string) (*listenerv3.Listener, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fakeenvoy: %w", err)
	}
	var snap Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("fakeenvoy: %s: %w", path, err)
	}
	for _, raw := range snap.Resources[resourcev3.ListenerType] {
		var head struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &head) != nil || head.Name != name {
			continue
		}
		// Each resource is written as an Any ("@type" first).
		a, l := &anypb.Any{}, &listenerv3.Listener{}
		if err := protojson.Unmarshal(raw, a); err != nil {
			return nil, fmt.Errorf("fakeenvoy: %s: listener %s: %w", path, name, err)
		}
		if err := a.UnmarshalTo(l); err != nil {
			return nil, fmt.Errorf("fakeenvoy: %s: listener %s: %w", path, name, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("fakeenvoy: %s holds no listener %s", path, name)
}
