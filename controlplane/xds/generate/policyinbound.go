package generate

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	httplocalrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netlocalrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

// hcmOptions are what policies add to an HTTP connection manager.
type hcmOptions struct {
	streamIdleTimeout, requestHeadersTimeout *durationpb.Duration
	common                                   *corev3.HttpProtocolOptions
	// filters run after ecsmesh's filter and before the router.
	filters []*hcmv3.HttpFilter
	// routes come before the default route.
	routes []*routev3.Route
	// route adjusts the default route's action.
	route func(*routev3.RouteAction) error
	// accessLogs are MeshAccessLog's loggers.
	accessLogs []*accesslogv3.AccessLog
	// tracing is MeshTrace's.
	tracing *hcmv3.HttpConnectionManager_Tracing
	// normalizePath normalizes request paths (RFC 3986, merged slashes)
	// before any filter: permissions that match paths see one spelling.
	normalizePath bool
}

func (o *hcmOptions) apply(h *hcmv3.HttpConnectionManager) {
	if o == nil {
		return
	}
	h.StreamIdleTimeout, h.RequestHeadersTimeout, h.CommonHttpProtocolOptions = o.streamIdleTimeout, o.requestHeadersTimeout, o.common
	h.AccessLog = o.accessLogs
	h.Tracing = o.tracing
	if o.normalizePath {
		h.NormalizePath, h.MergeSlashes = wrapperspb.Bool(true), true
	}
}

// tcpOptions are what policies add to a TCP proxy chain.
type tcpOptions struct {
	idleTimeout        *durationpb.Duration
	maxConnectAttempts *wrapperspb.UInt32Value
	// filters run before tcp_proxy (after RBAC on inbounds).
	filters []*listenerv3.Filter
	// backends, when not nil, replace the proxy's cluster (MeshTCPRoute).
	backends []resource.BackendRef
	// accessLogs are MeshAccessLog's loggers.
	accessLogs []*accesslogv3.AccessLog
}

func (o *tcpOptions) apply(t *tcpproxyv3.TcpProxy) {
	if o == nil {
		return
	}
	if o.backends != nil {
		tcpRoute(t, t.GetCluster(), o.backends)
	}
	t.AccessLog = o.accessLogs
	if o.idleTimeout != nil {
		t.IdleTimeout = o.idleTimeout
	}
	t.MaxConnectAttempts = o.maxConnectAttempts
}

// inboundHTTPOptions turns an inbound's resolved policies into HCM
// options: MeshTimeout's from settings, then one fault filter per
// MeshFaultInjection fault, then MeshRateLimit's local rate limit. Faults
// and limits run after ecsmesh's filter, so a refused caller neither
// triggers a fault nor spends the inbound's budget.
func inboundHTTPOptions(service, spiffeID string, fc *fromConf) (*hcmOptions, error) {
	if fc == nil {
		return nil, nil
	}
	o := &hcmOptions{}
	var err error
	if o.accessLogs, err = accessLogs(fc.AccessLog, logContext{mesh: fc.mesh, direction: directionInbound, service: service}); err != nil {
		return nil, err
	}
	if o.tracing, err = tracing(fc.Trace, traceSide{service: service, ids: []string{spiffeID}}); err != nil {
		return nil, err
	}
	if t := fc.Timeout; t != nil {
		o.common = commonHTTPOptions(t)
		if h := t.HTTP; h != nil {
			o.streamIdleTimeout, o.requestHeadersTimeout = dur(h.StreamIdleTimeout), dur(h.RequestHeadersTimeout)
			if h.RequestTimeout != nil {
				timeout := dur(h.RequestTimeout)
				o.route = func(ra *routev3.RouteAction) error { ra.Timeout = timeout; return nil }
			}
		}
	}
	for _, cf := range fc.Faults {
		for _, hf := range cf.Conf.HTTP {
			fs, err := faultFilters(hf, cf)
			if err != nil {
				return nil, err
			}
			o.filters = append(o.filters, fs...)
		}
	}
	if rl := fc.RateLimit; rl != nil && rl.Local != nil && rl.Local.HTTP != nil {
		h := rl.Local.HTTP
		if (h.Disabled == nil || !*h.Disabled) && h.RequestRate != nil {
			f, err := httpLocalRateLimit(service, h)
			if err != nil {
				return nil, err
			}
			o.filters = append(o.filters, f)
		}
	}
	return o, nil
}

// inboundTCPOptions turns an inbound's resolved policies into TCP proxy
// options: MeshTimeout's idleTimeout and MeshRateLimit's connection rate.
func inboundTCPOptions(service string, fc *fromConf) (*tcpOptions, error) {
	if fc == nil {
		return nil, nil
	}
	o := &tcpOptions{}
	var err error
	if o.accessLogs, err = accessLogs(fc.AccessLog, logContext{mesh: fc.mesh, direction: directionInbound, service: service, tcp: true}); err != nil {
		return nil, err
	}
	if t := fc.Timeout; t != nil {
		o.idleTimeout = dur(t.IdleTimeout)
	}
	if rl := fc.RateLimit; rl != nil && rl.Local != nil && rl.Local.TCP != nil {
		t := rl.Local.TCP
		if (t.Disabled == nil || !*t.Disabled) && t.ConnectionRate != nil {
			a, err := pack(&netlocalrlv3.LocalRateLimit{
				StatPrefix:  "inbound_" + service + "_rate_limit",
				TokenBucket: tokenBucket(*t.ConnectionRate),
			})
			if err != nil {
				return nil, err
			}
			o.filters = append(o.filters, &listenerv3.Filter{Name: networkLocalRateLimit, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}})
		}
	}
	return o, nil
}

func tokenBucket(r resource.Rate) *typev3.TokenBucket {
	return &typev3.TokenBucket{MaxTokens: r.Num, TokensPerFill: wrapperspb.UInt32(r.Num), FillInterval: durationpb.New(r.Interval.Duration)}
}

// httpLocalRateLimit is a local token bucket over every request of the
// inbound, answering Status (429 by default) with the configured headers
// when empty.
func httpLocalRateLimit(service string, h *resource.LocalHTTPRateLimit) (*hcmv3.HttpFilter, error) {
	all := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}}
	rl := &httplocalrlv3.LocalRateLimit{
		StatPrefix:     "inbound_" + service + "_rate_limit",
		TokenBucket:    tokenBucket(*h.RequestRate),
		FilterEnabled:  all,
		FilterEnforced: all,
	}
	if o := h.OnRateLimit; o != nil {
		if o.Status != nil {
			rl.Status = &typev3.HttpStatus{Code: typev3.StatusCode(*o.Status)}
		}
		rl.ResponseHeadersToAdd = headerOptions(o.Headers)
	}
	a, err := pack(rl)
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: httpLocalRateLimitFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// faultFilters are Envoy's fault filters for one MeshFaultInjection fault
// and its callers, told apart by the caller identity ecsmesh's filter
// verified and set (x-ecsmesh-peer-id): one filter per caller identity
// (header matchers AND together), or one for every caller but the
// excepted ones.
func faultFilters(f resource.HTTPFault, cf callerFaults) ([]*hcmv3.HttpFilter, error) {
	peer := func(id string, invert bool) *routev3.HeaderMatcher {
		return &routev3.HeaderMatcher{Name: filter.HeaderPeerID, InvertMatch: invert,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(id)}}
	}
	if cf.Callers == nil {
		var except []*routev3.HeaderMatcher
		for _, id := range cf.Except {
			except = append(except, peer(id, true))
		}
		ff, err := faultFilter(f, except)
		if err != nil {
			return nil, err
		}
		return []*hcmv3.HttpFilter{ff}, nil
	}
	var out []*hcmv3.HttpFilter
	for _, id := range cf.Callers {
		ff, err := faultFilter(f, []*routev3.HeaderMatcher{peer(id, false)})
		if err != nil {
			return nil, err
		}
		out = append(out, ff)
	}
	return out, nil
}

// faultFilter is Envoy's fault filter for one fault, applied to requests
// matching headers.
func faultFilter(f resource.HTTPFault, headers []*routev3.HeaderMatcher) (*hcmv3.HttpFilter, error) {
	hf := &faultv3.HTTPFault{Headers: headers}
	if a := f.Abort; a != nil {
		hf.Abort = &faultv3.FaultAbort{
			ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(a.HTTPStatus)},
			Percentage: percent(a.Percentage),
		}
	}
	if d := f.Delay; d != nil {
		hf.Delay = &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(d.Value.Duration)},
			Percentage:         percent(d.Percentage),
		}
	}
	if b := f.ResponseBandwidth; b != nil {
		kbps, err := b.BandwidthKbps()
		if err != nil {
			return nil, err
		}
		hf.ResponseRateLimit = &commonfaultv3.FaultRateLimit{
			LimitType:  &commonfaultv3.FaultRateLimit_FixedLimit_{FixedLimit: &commonfaultv3.FaultRateLimit_FixedLimit{LimitKbps: kbps}},
			Percentage: percent(b.Percentage),
		}
	}
	a, err := pack(hf)
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: wellknown.Fault, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}
