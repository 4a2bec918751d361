package generate

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/policy"
	"github.com/ecsmesh/ecsmesh/filter"
)

// subsetSeparator joins a service and its subset tags in a subset
// cluster's name ("backend~version=v2"). Service names never hold it.
const subsetSeparator = "~"

// BackendCluster names the cluster of a route backend: the service's own
// cluster for a MeshService, "<service>~<tag>=<value>&..." (tags sorted,
// query-escaped) for a MeshServiceSubset.
func BackendCluster(b resource.BackendRef) string {
	s := policy.BackendSubset(b)
	if len(s) <= 1 {
		return b.Name
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if k != resource.TagService {
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(s[k]))
		}
	}
	return b.Name + subsetSeparator + strings.Join(parts, "&")
}

// routeBackends lists every subset backend the mesh's routes name.
func routeBackends(ps Policies) map[string]resource.BackendRef {
	out := map[string]resource.BackendRef{}
	add := func(refs []resource.BackendRef) {
		for _, b := range refs {
			if name := BackendCluster(b); name != b.Name {
				out[name] = b
			}
		}
	}
	for _, p := range ps.HTTPRoutes {
		for _, to := range p.Spec.To {
			for _, r := range to.Rules {
				add(r.Default.BackendRefs)
				for _, f := range r.Default.Filters {
					if f.RequestMirror != nil {
						add([]resource.BackendRef{f.RequestMirror.BackendRef})
					}
				}
			}
		}
	}
	for _, p := range ps.TCPRoutes {
		for _, to := range p.Spec.To {
			for _, r := range to.Rules {
				add(r.Default.BackendRefs)
			}
		}
	}
	return out
}

// weighted is the cluster specifier of backends: one cluster, or
// weighted clusters. crossService reports a backend outside service.
func weighted(service string, backends []resource.BackendRef) (one string, w *routev3.WeightedCluster, crossService bool) {
	if len(backends) == 0 {
		return service, nil, false
	}
	for _, b := range backends {
		crossService = crossService || b.Name != service
	}
	if len(backends) == 1 {
		return BackendCluster(backends[0]), nil, crossService
	}
	w = &routev3.WeightedCluster{}
	for _, b := range backends {
		w.Clusters = append(w.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: BackendCluster(b), Weight: wrapperspb.UInt32(b.EffectiveWeight())})
	}
	return "", w, crossService
}

// httpRoute is Envoy's route for one MeshHTTPRoute match of calls to
// service, carrying the caller's MeshTimeout and MeshRetry settings.
func httpRoute(service, protocol string, r policy.HTTPRoute, tc *toConf) (*routev3.Route, error) {
	match, err := routeMatch(service, r.Match)
	if err != nil {
		return nil, err
	}
	out := &routev3.Route{Name: service, Match: match}
	var redirect *resource.RequestRedirect
	var rewrite *resource.URLRewrite
	var mirrors []*routev3.RouteAction_RequestMirrorPolicy
	for _, f := range r.Conf.Filters {
		switch f.Type {
		case resource.FilterRequestHeaderModifier:
			out.RequestHeadersToAdd, out.RequestHeadersToRemove = headerModifier(f.RequestHeaderModifier)
		case resource.FilterResponseHeaderModifier:
			out.ResponseHeadersToAdd, out.ResponseHeadersToRemove = headerModifier(f.ResponseHeaderModifier)
		case resource.FilterRequestRedirect:
			redirect = f.RequestRedirect
		case resource.FilterURLRewrite:
			rewrite = f.URLRewrite
		case resource.FilterRequestMirror:
			m := &routev3.RouteAction_RequestMirrorPolicy{Cluster: BackendCluster(f.RequestMirror.BackendRef)}
			if p := f.RequestMirror.Percentage; p != nil {
				m.RuntimeFraction = &corev3.RuntimeFractionalPercent{DefaultValue: percent(*p)}
			}
			mirrors = append(mirrors, m)
		}
	}
	if redirect != nil {
		out.Action = &routev3.Route_Redirect{Redirect: redirectAction(redirect, r.Match)}
		return out, nil
	}
	ra := &routev3.RouteAction{RequestMirrorPolicies: mirrors}
	one, w, cross := weighted(service, r.Conf.BackendRefs)
	if w != nil {
		ra.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: w}
	} else {
		ra.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: one}
	}
	if cross {
		// The caller's JWT-SVID names service as its audience; another
		// service's inbound must not receive it.
		out.RequestHeadersToRemove = append(out.RequestHeadersToRemove, filter.HeaderIdentity)
	}
	if rewrite != nil {
		if rewrite.Hostname != "" {
			ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rewrite.Hostname}
		}
		if p := rewrite.Path; p != nil {
			switch {
			case p.ReplaceFullPath != nil:
				ra.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^.*$"}, Substitution: *p.ReplaceFullPath}
			case p.ReplacePrefixMatch != nil:
				ra.PrefixRewrite = *p.ReplacePrefixMatch
			}
		}
	}
	if tc != nil {
		if err := routePolicy(ra, protocol, tc); err != nil {
			return nil, err
		}
	}
	out.Action = &routev3.Route_Route{Route: ra}
	return out, nil
}

// routeMatch matches a Kuma match among the requests ecsmesh's filter
// sends to service.
func routeMatch(service string, m resource.HTTPRouteMatch) (*routev3.RouteMatch, error) {
	rm := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if p := m.Path; p != nil {
		switch p.Type {
		case resource.PathExact:
			rm.PathSpecifier = &routev3.RouteMatch_Path{Path: p.Value}
		case resource.PathPrefix:
			// Whole segments, as in Gateway API: /api matches /api/x, not
			// /apix.
			v := strings.TrimRight(p.Value, "/")
			if v != "" {
				rm.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: v}
			}
		case resource.PathRegularExpression:
			rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: p.Value}}
		default:
			return nil, fmt.Errorf("generate: MeshHTTPRoute path type %q", p.Type)
		}
	}
	rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{Name: filter.HeaderCluster,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(service)}})
	if m.Method != "" {
		rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{Name: ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(m.Method)}})
	}
	for _, h := range m.Headers {
		rm.Headers = append(rm.Headers, headerMatcher(h))
	}
	for _, q := range m.QueryParams {
		sm := exact(q.Value)
		if q.Type == resource.PathRegularExpression {
			sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: q.Value}}}
		}
		rm.QueryParameters = append(rm.QueryParameters, &routev3.QueryParameterMatcher{Name: q.Name,
			QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm}})
	}
	return rm, nil
}

func headerModifier(h *resource.HeaderModifier) (add []*corev3.HeaderValueOption, remove []string) {
	if h == nil {
		return nil, nil
	}
	add = headerOptions(&resource.HeaderAdditions{Set: h.Set, Add: h.Add})
	for _, r := range h.Remove {
		remove = append(remove, strings.ToLower(r))
	}
	return add, remove
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY, 302: routev3.RedirectAction_FOUND, 303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT, 308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

func redirectAction(r *resource.RequestRedirect, m resource.HTTPRouteMatch) *routev3.RedirectAction {
	ra := &routev3.RedirectAction{HostRedirect: r.Hostname, ResponseCode: redirectCodes[r.StatusCode]}
	if r.Scheme != "" {
		ra.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: r.Scheme}
	}
	if r.Port != nil {
		ra.PortRedirect = *r.Port
	}
	if p := r.Path; p != nil {
		switch {
		case p.ReplaceFullPath != nil:
			ra.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: *p.ReplaceFullPath}
		case p.ReplacePrefixMatch != nil && m.Path != nil:
			ra.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: *p.ReplacePrefixMatch}
		}
	}
	return ra
}

// tcpRoute sends a TCP destination's connections to its MeshTCPRoute
// backends.
func tcpRoute(t *tcpproxyv3.TcpProxy, service string, backends []resource.BackendRef) {
	one, w, _ := weighted(service, backends)
	if w == nil {
		t.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: one}
		return
	}
	wc := &tcpproxyv3.TcpProxy_WeightedCluster{}
	for _, c := range w.Clusters {
		wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: c.Name, Weight: c.Weight.GetValue()})
	}
	t.ClusterSpecifier = &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
}

// subsets builds the cluster and endpoints of every service subset the
// mesh's routes name, from the dataplanes whose inbound of the service
// carries the subset's tags: their ready endpoints, and exactly their
// SPIFFE IDs for upstream TLS. A subset no dataplane serves gets no
// cluster (a route to it answers 503).
func (b *Builder) subsets(in *Input, m *Mesh, dps []*resource.Dataplane) error {
	clusters, endpoints := map[string]memoEntry{}, map[string]memoEntry{}
	refs := routeBackends(m.policies.ps)
	for _, name := range slices.Sorted(maps.Keys(refs)) {
		ref := refs[name]
		base := m.Services[ref.Name]
		if base == nil {
			continue
		}
		want := policy.BackendSubset(ref)
		svc := &Service{Name: name, Protocol: base.Protocol, sni: base.Name}
		for _, dp := range dps {
			id, ok := m.SpiffeIDs[dp.Name]
			for i := range dp.Networking.Inbound {
				inb := &dp.Networking.Inbound[i]
				if inb.Service() != ref.Name || !want.Matches(inb.Tags) {
					continue
				}
				if ok {
					svc.SpiffeIDs = append(svc.SpiffeIDs, id)
				}
				if inb.Ready() && in.Online[dp.Name] {
					svc.Endpoints = append(svc.Endpoints, Endpoint{Address: dp.Networking.Address, Port: inb.Port})
				}
			}
		}
		if len(svc.SpiffeIDs) == 0 {
			continue
		}
		slices.Sort(svc.SpiffeIDs)
		svc.SpiffeIDs = dedup(svc.SpiffeIDs)
		slices.SortFunc(svc.Endpoints, func(a, b Endpoint) int {
			if c := strings.Compare(a.Address, b.Address); c != 0 {
				return c
			}
			return a.Port - b.Port
		})
		ck := svc.Protocol + "\x00" + strings.Join(svc.SpiffeIDs, "\x00")
		c, err := memo(b.subsetClusters, clusters, name, ck, func() (*Resource, error) { return serviceCluster(svc, nil) })
		if err != nil {
			return err
		}
		var ek strings.Builder
		for _, ep := range svc.Endpoints {
			fmt.Fprintf(&ek, "%s:%d\x00", ep.Address, ep.Port)
		}
		e, err := memo(b.subsetEndpoints, endpoints, name, ek.String(), func() (*Resource, error) { return serviceEndpoints(svc) })
		if err != nil {
			return err
		}
		m.subsets = append(m.subsets, c)
		m.Clusters = append(m.Clusters, c)
		m.ClusterByName[name] = c
		m.Endpoints = append(m.Endpoints, e)
		m.EndpointByName[name] = e
	}
	b.subsetClusters, b.subsetEndpoints = clusters, endpoints
	return nil
}
