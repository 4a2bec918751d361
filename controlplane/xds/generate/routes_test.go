package generate

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// TestRoutes: MeshHTTPRoute's matches become routes in Kuma's order,
// before the default; a version subset is its own cluster with exactly
// its dataplanes' endpoints and identities; a route to another service
// drops the JWT-SVID bound to the one called; MeshTCPRoute splits TCP.
func TestRoutes(t *testing.T) {
	b := NewBuilder()
	m, err := b.Mesh(withPolicies(t, httpRoutes+"---\n"+policyGolden[7].docs))
	if err != nil {
		t.Fatal(err)
	}
	s := snapshotOf(t, b, m, "web-1", true)
	rs := routes(listenerHCM(t, s, "outbound:127.1.0.1:8080"))
	if len(rs) != 4 {
		t.Fatalf("web's VIP routes: %d, want 3 policy routes and the default", len(rs))
	}
	if rs[0].GetMatch().GetPath() != "/old" || rs[0].GetRedirect().GetPathRedirect() != "/new" || rs[0].GetRedirect().GetResponseCode() != routev3.RedirectAction_MOVED_PERMANENTLY {
		t.Errorf("route 0 %v, want the exact /old redirect first", rs[0])
	}
	if rs[1].GetMatch().GetPathSeparatedPrefix() != "/api" || rs[1].GetRoute().GetCluster() != "api" ||
		len(rs[1].GetRequestHeadersToRemove()) != 1 || rs[1].GetRequestHeadersToRemove()[0] != "x-ecsmesh-identity" {
		t.Errorf("route 1 %v, want /api (the longer prefix) to api without web's token", rs[1])
	}
	split := rs[2].GetRoute().GetWeightedClusters().GetClusters()
	if len(split) != 2 || split[0].GetName() != "web~version=v2" || split[0].GetWeight().GetValue() != 90 || split[1].GetName() != "web" ||
		rs[2].GetRoute().GetPrefixRewrite() != "/" || len(rs[2].GetRoute().GetRequestMirrorPolicies()) != 1 || len(rs[2].GetRequestHeadersToRemove()) != 1 {
		t.Errorf("route 2 %v, want the 90/10 split with rewrite, mirror and header changes", rs[2])
	}
	for _, r := range rs[:3] {
		if h := r.GetMatch().GetHeaders()[0]; h.GetName() != "x-ecsmesh-cluster" || h.GetStringMatch().GetExact() != "web" {
			t.Errorf("route %s does not require x-ecsmesh-cluster: web", r.GetMatch())
		}
	}
	sub := unpack(t, s, resourcev3.ClusterType, "web~version=v2", &clusterv3.Cluster{})
	tlsCtx := &tlsv3.UpstreamTlsContext{}
	if err := sub.GetTransportSocket().GetTypedConfig().UnmarshalTo(tlsCtx); err != nil {
		t.Fatal(err)
	}
	sans := tlsCtx.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames()
	if len(sans) != 1 || sans[0].GetMatcher().GetExact() != m.SpiffeIDs["web-2"] || tlsCtx.GetSni() != "web" {
		t.Errorf("subset cluster TLS %v, want exactly web-2's identity and SNI web", tlsCtx)
	}
	cla := unpack(t, s, resourcev3.EndpointType, "web~version=v2", &endpointv3.ClusterLoadAssignment{})
	if eps := cla.GetEndpoints()[0].GetLbEndpoints(); len(eps) != 1 || eps[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress() != "10.0.1.11" {
		t.Errorf("subset endpoints %v, want web-2 only", cla)
	}
	l := unpack(t, s, resourcev3.ListenerType, "outbound:127.1.0.3:8080", &listenerv3.Listener{})
	tp := &tcpproxyv3.TcpProxy{}
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(tp); err != nil {
		t.Fatal(err)
	}
	if w := tp.GetWeightedClusters().GetClusters(); len(w) != 2 || w[0].GetName() != "redis" || w[0].GetWeight() != 80 || w[1].GetName() != "web" {
		t.Errorf("redis tcp_proxy %v, want an 80/20 split", tp)
	}
	// A route to a subset nobody serves gets no cluster: Envoy answers 503.
	m2, err := NewBuilder().Mesh(withPolicies(t, strings.ReplaceAll(httpRoutes, "version: v2", "version: v9")))
	if err != nil {
		t.Fatal(err)
	}
	if m2.ClusterByName["web~version=v9"] != nil {
		t.Errorf("a subset without dataplanes got a cluster (it would accept no identity)")
	}
}
