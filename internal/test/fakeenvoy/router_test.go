package fakeenvoy

import (
	"math/rand/v2"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func exactHeader(name, v string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}}}
}

func toCluster(c string) *routev3.Route_Route {
	return &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: c}}}
}

func oneHost(routes ...*routev3.Route) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: routes}}}
}

func fixed(v uint64) func() uint64 { return func() uint64 { return v } }

// TestRouterMatches: the first route whose path, headers and query
// parameters all match wins, by Envoy's rules for each matcher.
func TestRouterMatches(t *testing.T) {
	regex := func(re string) *matcherv3.RegexMatcher { return &matcherv3.RegexMatcher{Regex: re} }
	rc := oneHost(
		&routev3.Route{Name: "exact", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/exact"}}, Action: toCluster("exact")},
		&routev3.Route{Name: "separated", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"}}, Action: toCluster("separated")},
		&routev3.Route{Name: "regex", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: regex(`/v[0-9]+`)}}, Action: toCluster("regex")},
		&routev3.Route{Name: "header", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/h"},
			Headers: []*routev3.HeaderMatcher{exactHeader("x-team", "payments"), exactHeader(":method", "GET")}}, Action: toCluster("header")},
		&routev3.Route{Name: "absent", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/h"},
			Headers: []*routev3.HeaderMatcher{{Name: "x-debug", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true}}}, Action: toCluster("absent")},
		&routev3.Route{Name: "not-beta", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/h"},
			Headers: []*routev3.HeaderMatcher{{Name: "x-channel", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
				StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "beta"}}}}}}, Action: toCluster("not-beta")},
		&routev3.Route{Name: "query", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/q"},
			QueryParameters: []*routev3.QueryParameterMatcher{{Name: "v", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{
				StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regex(`[0-9]+`)}}}}}}, Action: toCluster("query")},
		&routev3.Route{Name: "prefix-with-query", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/p?debug"}}, Action: toCluster("prefix-with-query")},
		&routev3.Route{Name: "rest", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, Action: toCluster("rest")},
	)
	r, err := NewRouter(rc, fixed(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		headers map[string]string
		want    string
	}{
		{"exact path", "/exact", nil, "exact"},
		{"exact path ignores the query", "/exact?a=1", nil, "exact"},
		{"exact path is not a prefix", "/exact/more", nil, "rest"},
		{"separated prefix alone", "/api", nil, "separated"},
		{"separated prefix then a segment", "/api/v1", nil, "separated"},
		{"separated prefix with a query", "/api?x=1", nil, "separated"},
		{"separated prefix is whole segments", "/apix", nil, "rest"},
		{"regex is a full match", "/v12", nil, "regex"},
		{"regex does not match a longer path", "/v12/x", nil, "rest"},
		{"regex ignores the query", "/v2?x=y", nil, "regex"},
		{"all headers match", "/h", map[string]string{"x-team": "payments", ":method": "GET", "x-debug": "1"}, "header"},
		{"one header differs", "/h", map[string]string{"x-team": "payments", ":method": "POST"}, "absent"},
		{"exact header is case-sensitive", "/h", map[string]string{"x-team": "Payments", ":method": "GET"}, "absent"},
		{"inverted present matches a missing header", "/h", map[string]string{"x-channel": "beta-1"}, "absent"},
		{"inverted string matcher on another value", "/h", map[string]string{"x-debug": "1", "x-channel": "stable"}, "not-beta"},
		{"inverted string matcher on the value", "/h", map[string]string{"x-debug": "1", "x-channel": "beta-2"}, "rest"},
		{"inverted string matcher, header missing", "/h", map[string]string{"x-debug": "1"}, "rest"},
		{"query parameter matches", "/q?v=42", nil, "query"},
		{"query parameter does not match", "/q?v=x", nil, "rest"},
		{"query parameter missing", "/q", nil, "rest"},
		{"prefix includes the query", "/p?debug=1", nil, "prefix-with-query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{":path": tc.path, ":authority": "backend.mesh.local:8080"}
			for k, v := range tc.headers {
				h[k] = v
			}
			d := r.Route(h)
			if d.Cluster != tc.want || d.Status != 0 || d.Route.GetName() != tc.want {
				t.Errorf("%s → cluster %q status %d route %q, want %s", tc.path, d.Cluster, d.Status, d.Route.GetName(), tc.want)
			}
		})
	}
}

// TestRouterActions: cluster, cluster_header, weighted_clusters (Envoy's
// pick: random modulo the total weight, clusters in order), redirects,
// direct responses and no route.
func TestRouterActions(t *testing.T) {
	weighted := &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
		Clusters: []*routev3.WeightedCluster_ClusterWeight{
			{Name: "backend~version=v1", Weight: wrapperspb.UInt32(90)},
			{Name: "never", Weight: wrapperspb.UInt32(0)},
			{Name: "backend~version=v2", Weight: wrapperspb.UInt32(10)},
		}}}}}
	rc := oneHost(
		&routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/split"}}, Action: weighted},
		&routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/old"}},
			Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/new"}, ResponseCode: routev3.RedirectAction_PERMANENT_REDIRECT}}},
		&routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/teapot"}},
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 418}}},
		&routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_ClusterHeader{ClusterHeader: "x-ecsmesh-cluster"}}}},
	)
	for _, tc := range []struct {
		name    string
		path    string
		rand    uint64
		headers map[string]string
		cluster string
		status  int
	}{
		{"weighted, first range start", "/split", 0, nil, "backend~version=v1", 0},
		{"weighted, first range end", "/split", 89, nil, "backend~version=v1", 0},
		{"weighted, a zero weight is never picked", "/split", 90, nil, "backend~version=v2", 0},
		{"weighted, last range end", "/split", 99, nil, "backend~version=v2", 0},
		{"weighted, modulo the total", "/split", 1_000_000_095, nil, "backend~version=v2", 0},
		{"cluster header", "/x", 0, map[string]string{"x-ecsmesh-cluster": "redis"}, "redis", 0},
		{"cluster header missing: no cluster", "/x", 0, nil, "", 503},
		{"redirect", "/old", 0, nil, "", 308},
		{"direct response", "/teapot", 0, nil, "", 418},
		{"no route", "relative", 0, nil, "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(rc, fixed(tc.rand))
			if err != nil {
				t.Fatal(err)
			}
			h := map[string]string{":path": tc.path, ":authority": "backend.mesh.local"}
			for k, v := range tc.headers {
				h[k] = v
			}
			if d := r.Route(h); d.Cluster != tc.cluster || d.Status != tc.status {
				t.Errorf("%s (random %d) → %q %d, want %q %d", tc.path, tc.rand, d.Cluster, d.Status, tc.cluster, tc.status)
			}
		})
	}
}

// TestRouterVirtualHosts: exact domain, then the longest suffix wildcard,
// then prefix wildcards, then "*"; the authority's port is part of it.
func TestRouterVirtualHosts(t *testing.T) {
	host := func(name string, domains ...string) *routev3.VirtualHost {
		return &routev3.VirtualHost{Name: name, Domains: domains, Routes: []*routev3.Route{
			{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, Action: toCluster(name)}}}
	}
	rc := &routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{
		host("any", "*"), host("prefix", "api.*"), host("suffix", "*.local"), host("longer-suffix", "*.mesh.local"), host("exact", "web.mesh.local:8080"),
	}}
	r, err := NewRouter(rc, fixed(0))
	if err != nil {
		t.Fatal(err)
	}
	for authority, want := range map[string]string{
		"WEB.mesh.local:8080": "exact", "web.mesh.local": "longer-suffix", "redis.local": "suffix", "api.example": "prefix",
		"example.com": "any", ".local": "any",
	} {
		if d := r.Route(map[string]string{":path": "/", ":authority": authority}); d.Cluster != want {
			t.Errorf("%s → %q, want %s", authority, d.Cluster, want)
		}
	}
}

// TestRouterRefusesWhatItCannotDecide: shapes whose Envoy behaviour the
// stand-in does not reproduce are errors, never a guess.
func TestRouterRefusesWhatItCannotDecide(t *testing.T) {
	prefix := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	for name, rt := range map[string]*routev3.Route{
		"runtime fraction": {Match: &routev3.RouteMatch{PathSpecifier: prefix.PathSpecifier, RuntimeFraction: &corev3.RuntimeFractionalPercent{}}, Action: toCluster("a")},
		"case insensitive": {Match: &routev3.RouteMatch{PathSpecifier: prefix.PathSpecifier, CaseSensitive: wrapperspb.Bool(false)}, Action: toCluster("a")},
		"bad regex":        {Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "("}}}, Action: toCluster("a")},
		"range header":     {Match: &routev3.RouteMatch{PathSpecifier: prefix.PathSpecifier, Headers: []*routev3.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{}}}}, Action: toCluster("a")},
		"zero weights": {Match: prefix, Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
			Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: "a", Weight: wrapperspb.UInt32(0)}}}}}}},
		"weighted cluster header": {Match: prefix, Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
			Clusters: []*routev3.WeightedCluster_ClusterWeight{{ClusterHeader: "x", Weight: wrapperspb.UInt32(1)}}}}}}},
		"no action": {Match: prefix},
	} {
		if _, err := NewRouter(oneHost(rt), fixed(0)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewRouter(oneHost(), nil); err == nil {
		t.Error("a router without a random source was made")
	}
	rds, _ := anypb.New(&hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r"}}})
	l := &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: rds}}}}}}
	if _, err := RouteConfigOf(l); err == nil || !strings.Contains(err.Error(), "RDS") {
		t.Errorf("RouteConfigOf(RDS listener) = %v, want an error naming RDS", err)
	}
}

// TestRouterOverGeneratedConfig routes over the control plane's golden
// MeshHTTPRoute listener (web's VIP listener for web): the policy routes
// only take requests ecsmesh's filter sent to web, the split is 90/10.
func TestRouterOverGeneratedConfig(t *testing.T) {
	l, err := ReadListener("../../../controlplane/xds/generate/testdata/policy/meshhttproute.web-1.json", "outbound:127.1.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := RouteConfigOf(l)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	r, err := NewRouter(rc, rng.Uint64)
	if err != nil {
		t.Fatal(err)
	}
	req := func(path, cluster string, extra ...string) Decision {
		h := map[string]string{":path": path, ":authority": "web.mesh.local:8080", ":method": "GET", "x-ecsmesh-cluster": cluster}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return r.Route(h)
	}
	if d := req("/old", "web"); d.Status != 301 || d.Index != 0 {
		t.Errorf("/old → %+v, want the 301 redirect", d)
	}
	if d := req("/api/x", "web", "x-team", "payments"); d.Cluster != "api" {
		t.Errorf("/api/x with x-team → %q, want api", d.Cluster)
	}
	if d := req("/api/x", "web"); d.Cluster != "web" || d.Index != 3 {
		t.Errorf("/api/x without x-team → %q (route %d), want the default route to web", d.Cluster, d.Index)
	}
	if d := req("/v2/x", "redis"); d.Cluster != "redis" || d.Index != 3 {
		t.Errorf("/v2/x for redis → %q (route %d): web's policy routes must not take other services' requests", d.Cluster, d.Index)
	}
	counts := map[string]int{}
	for range 10_000 {
		counts[req("/v2/x", "web").Cluster]++
	}
	if v2 := counts["web~version=v2"]; v2 < 8_850 || v2 > 9_150 || counts["web"] != 10_000-v2 {
		t.Errorf("10,000 requests to /v2: %v, want about 9,000 to web~version=v2 and the rest to web", counts)
	}
}
