package generate

import (
	"fmt"
	"net"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

const connectTimeout = 5 * time.Second

// ads is the config source of every dynamic resource: the ADS stream.
func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func sds(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: ads()}
}

func socketAddress(addr string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       addr,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

func isHTTP(protocol string) bool {
	switch protocol {
	case resource.ProtocolHTTP, resource.ProtocolHTTP2, resource.ProtocolGRPC:
		return true
	}
	return false
}

func isHTTP2(protocol string) bool {
	return protocol == resource.ProtocolHTTP2 || protocol == resource.ProtocolGRPC
}

// http2Options makes a cluster speak HTTP/2 to its endpoints.
func http2Options() (map[string]*anypb.Any, error) {
	a, err := pack(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	})
	if err != nil {
		return nil, err
	}
	return map[string]*anypb.Any{protoName(&httpv3.HttpProtocolOptions{}): a}, nil
}

// serviceCluster is the EDS cluster of a mesh service, with upstream mTLS
// that accepts exactly the SPIFFE IDs the service's dataplanes hold, and
// what the caller's policies set for it (tc may be nil).
func serviceCluster(svc *Service, tc *toConf) (*Resource, error) {
	sans := make([]*tlsv3.SubjectAltNameMatcher, 0, len(svc.SpiffeIDs))
	for _, id := range svc.SpiffeIDs {
		sans = append(sans, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_URI,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}},
		})
	}
	common := &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds(IdentitySecret)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
			ValidationContextSdsSecretConfig: sds(TrustBundleSecret),
		}},
	}
	if isHTTP2(svc.Protocol) {
		common.AlpnProtocols = []string{"h2"}
	}
	sni := svc.Name
	if svc.sni != "" {
		sni = svc.sni
	}
	tlsAny, err := pack(&tlsv3.UpstreamTlsContext{CommonTlsContext: common, Sni: sni})
	if err != nil {
		return nil, err
	}
	c := &clusterv3.Cluster{
		Name:                 svc.Name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()},
		ConnectTimeout:       durationpb.New(connectTimeout),
		TransportSocket: &corev3.TransportSocket{
			Name:       wellknown.TransportSocketTls,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tlsAny},
		},
	}
	if isHTTP2(svc.Protocol) {
		if c.TypedExtensionProtocolOptions, err = http2Options(); err != nil {
			return nil, err
		}
	}
	if tc != nil {
		if err := clusterPolicy(c, svc.Protocol, tc); err != nil {
			return nil, fmt.Errorf("%w (cluster %s)", err, c.Name)
		}
	}
	return newResource(c.Name, c)
}

// serviceEndpoints is the ClusterLoadAssignment of a mesh service.
func serviceEndpoints(svc *Service) (*Resource, error) {
	lbs := make([]*endpointv3.LbEndpoint, 0, len(svc.Endpoints))
	for _, ep := range svc.Endpoints {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: socketAddress(ep.Address, ep.Port),
		}}})
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: svc.Name}
	if len(lbs) > 0 {
		cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}
	}
	return newResource(cla.ClusterName, cla)
}

// localCluster is the static cluster of the app behind an inbound, with
// the circuit breakers of the inbound's MeshCircuitBreaker (may be nil).
func localCluster(name, addr string, port int, protocol string, breaker *resource.MeshCircuitBreakerConf) (*Resource, error) {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: socketAddress(addr, port),
			}}}},
		}}},
	}
	if isHTTP2(protocol) {
		var err error
		if c.TypedExtensionProtocolOptions, err = http2Options(); err != nil {
			return nil, err
		}
	}
	if breaker != nil {
		if err := clusterPolicy(c, protocol, &toConf{Breaker: breaker}); err != nil {
			return nil, fmt.Errorf("%w (cluster %s)", err, name)
		}
	}
	return newResource(name, c)
}

// LocalClusterName names the cluster of the app at addr:port.
func LocalClusterName(addr string, port int) string {
	if addr == resource.DefaultServiceAddress {
		return fmt.Sprintf("localhost:%d", port)
	}
	return "app:" + net.JoinHostPort(addr, strconv.Itoa(port))
}

// ListenerName names a listener "<direction>:<host>:<port>", direction
// "inbound" or "outbound" and the address as net.JoinHostPort writes it.
func ListenerName(direction, addr string, port int) string {
	return direction + ":" + net.JoinHostPort(addr, strconv.Itoa(port))
}

// ecdsFilter is an HTTP filter whose configuration comes over ECDS.
func ecdsFilter(name, filterType string) *hcmv3.HttpFilter {
	typeURL := WasmConfigType
	if filterType == resource.FilterTypeGo {
		typeURL = GoConfigType
	}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
		ConfigSource: ads(),
		TypeUrls:     []string{typeURL},
	}}}
}

func routerFilter() (*hcmv3.HttpFilter, error) {
	a, err := pack(&routerv3.Router{})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: wellknown.Router, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// prefixRoute is a route of every path with action.
func prefixRoute(action *routev3.RouteAction) *routev3.Route {
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: action},
	}
}

// hcm is an HTTP connection manager: the ECDS filter, the filters of opt,
// then the router to the routes of opt and route (opt may be nil).
func hcm(statPrefix, routeName string, route *routev3.RouteAction, filterName, filterType string, opt *hcmOptions) (*listenerv3.Filter, error) {
	router, err := routerFilter()
	if err != nil {
		return nil, err
	}
	filters := []*hcmv3.HttpFilter{ecdsFilter(filterName, filterType)}
	var routes []*routev3.Route
	if opt != nil {
		filters = append(filters, opt.filters...)
		routes = append(routes, opt.routes...)
		if opt.route != nil {
			if err := opt.route(route); err != nil {
				return nil, err
			}
		}
	}
	routes = append(routes, prefixRoute(route))
	m := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name:         routeName,
			VirtualHosts: []*routev3.VirtualHost{{Name: routeName, Domains: []string{"*"}, Routes: routes}},
		}},
		HttpFilters: append(filters, router),
	}
	opt.apply(m)
	if len(routes) > 1 {
		// A policy route may name a backend that has no cluster (yet):
		// Envoy answers 503 for it instead of refusing the listener.
		m.GetRouteConfig().ValidateClusters = wrapperspb.Bool(false)
	}
	a, err := pack(m)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Filter{Name: wellknown.HTTPConnectionManager, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}, nil
}

// tcpProxy is the filters of opt (may be nil), then a TCP proxy to
// cluster.
func tcpProxy(statPrefix, cluster string, opt *tcpOptions) ([]*listenerv3.Filter, error) {
	t := &tcpproxyv3.TcpProxy{StatPrefix: statPrefix, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}}
	opt.apply(t)
	a, err := pack(t)
	if err != nil {
		return nil, err
	}
	var out []*listenerv3.Filter
	if opt != nil {
		out = append(out, opt.filters...)
	}
	return append(out, &listenerv3.Filter{Name: wellknown.TCPProxy, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}), nil
}

// outboundListener listens on addr:port for the app's calls to service:
// HTTP through the filter in outbound mode, TCP straight to the cluster.
// tc, when not nil, is what the caller's policies set for service: an
// HTTP request the filter routes to service takes a route carrying them.
func outboundListener(addr string, port int, svc, protocol, filterType string, tc *toConf) (*Resource, error) {
	name := ListenerName("outbound", addr, port)
	var filters []*listenerv3.Filter
	if isHTTP(protocol) {
		opt, err := outboundHTTPOptions(svc, protocol, tc)
		if err != nil {
			return nil, err
		}
		f, err := hcm("outbound_"+svc, "outbound", &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_ClusterHeader{ClusterHeader: filter.HeaderCluster},
		}, OutboundFilter, filterType, opt)
		if err != nil {
			return nil, err
		}
		filters = []*listenerv3.Filter{f}
	} else {
		opt, err := outboundTCPOptions(svc, tc)
		if err != nil {
			return nil, err
		}
		fs, err := tcpProxy("outbound_"+svc, svc, opt)
		if err != nil {
			return nil, err
		}
		filters = fs
	}
	l := &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(addr, port),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		FilterChains:     []*listenerv3.FilterChain{{Filters: filters}},
	}
	return newResource(name, l)
}

// inboundListener terminates mTLS on the dataplane's address and hands
// requests to the app: HTTP through the filter in inbound mode, TCP
// through RBAC.
func inboundListener(addr, spiffeID string, in *resource.Inbound, perms []filter.Permission, deflt, trustDomain, filterType string, fc *fromConf) (*Resource, error) {
	name := ListenerName("inbound", addr, in.Port)
	local := LocalClusterName(in.AppAddress(), in.AppPort())
	common := &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds(IdentitySecret)},
		ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: sds(TrustBundleSecret)},
	}
	if isHTTP2(in.Protocol()) {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	tlsAny, err := pack(&tlsv3.DownstreamTlsContext{
		CommonTlsContext:         common,
		RequireClientCertificate: &wrapperspb.BoolValue{Value: true},
	})
	if err != nil {
		return nil, err
	}
	var filters []*listenerv3.Filter
	if isHTTP(in.Protocol()) {
		opt, err := inboundHTTPOptions(in.Service(), spiffeID, fc)
		if err != nil {
			return nil, err
		}
		if opt == nil {
			opt = &hcmOptions{}
		}
		opt.normalizePath = true
		f, err := hcm("inbound_"+in.Service(), "inbound", &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: local},
		}, fmt.Sprintf("%s%d", InboundFilterPrefix, in.Port), filterType, opt)
		if err != nil {
			return nil, err
		}
		filters = append(filters, f)
	} else {
		rbacs, err := rbacFilters(in.Service(), perms, deflt, trustDomain)
		if err != nil {
			return nil, err
		}
		opt, err := inboundTCPOptions(in.Service(), fc)
		if err != nil {
			return nil, err
		}
		fs, err := tcpProxy("inbound_"+in.Service(), local, opt)
		if err != nil {
			return nil, err
		}
		filters = append(rbacs, fs...)
	}
	l := &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(addr, in.Port),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		FilterChains: []*listenerv3.FilterChain{{
			TransportSocket: &corev3.TransportSocket{Name: wellknown.TransportSocketTls, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tlsAny}},
			Filters:         filters,
		}},
	}
	return newResource(name, l)
}

func principal(p filter.Permission) *rbacconfigv3.Principal {
	m := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: p.Value}}
	if p.Type == filter.MatchPrefix {
		m = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p.Value}}
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Authenticated_{Authenticated: &rbacconfigv3.Principal_Authenticated{PrincipalName: m}}}
}

// rbacFilters enforce the same rules as the filter's inbound mode on a TCP
// inbound: a DENY filter for Deny rules, then an ALLOW filter for Allow
// rules and the default.
func rbacFilters(service string, perms []filter.Permission, deflt, trustDomain string) ([]*listenerv3.Filter, error) {
	var deny, allow []*rbacconfigv3.Principal
	for _, p := range perms {
		// A TCP connection has no method or path: a Deny limited to some
		// requests refuses the caller's connections (fail closed), an
		// Allow limited to some requests admits none.
		if len(p.Rules) > 0 && p.Action != filter.ActionDeny {
			continue
		}
		if p.Action == filter.ActionDeny {
			deny = append(deny, principal(p))
		} else {
			allow = append(allow, principal(p))
		}
	}
	switch deflt {
	case filter.DefaultAllowMesh:
		allow = append(allow, principal(filter.Permission{Type: filter.MatchPrefix, Value: "spiffe://" + trustDomain + "/"}))
	case filter.ActionAllow:
		allow = append(allow, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Any{Any: true}})
	}
	anyPerm := []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}}
	var out []*listenerv3.Filter
	add := func(prefix string, action rbacconfigv3.RBAC_Action, principals []*rbacconfigv3.Principal) error {
		rules := &rbacconfigv3.RBAC{Action: action}
		if len(principals) > 0 {
			rules.Policies = map[string]*rbacconfigv3.Policy{"ecsmesh": {Permissions: anyPerm, Principals: principals}}
		}
		a, err := pack(&rbacv3.RBAC{StatPrefix: prefix + service + "_", Rules: rules})
		if err != nil {
			return err
		}
		out = append(out, &listenerv3.Filter{Name: wellknown.RoleBasedAccessControl, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}})
		return nil
	}
	if len(deny) > 0 {
		if err := add("deny_", rbacconfigv3.RBAC_DENY, deny); err != nil {
			return nil, err
		}
	}
	if err := add("allow_", rbacconfigv3.RBAC_ALLOW, allow); err != nil {
		return nil, err
	}
	return out, nil
}
