package generate

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previousprioritiesv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

// Defaults of MeshHealthCheck fields that Envoy requires and Kuma
// defaults.
const (
	healthCheckInterval           = time.Minute
	healthCheckTimeout            = 15 * time.Second
	healthCheckUnhealthyThreshold = 5
	healthCheckHealthyThreshold   = 1
)

func dur(d *resource.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return durationpb.New(d.Duration)
}

func u32(v *uint32) *wrapperspb.UInt32Value {
	if v == nil {
		return nil
	}
	return wrapperspb.UInt32(*v)
}

// percent is a percentage 0–100 (decimals allowed) as Envoy's
// FractionalPercent, in millionths.
func percent(n resource.Number) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: uint32(math.Round(n.Float64() * 10000)), Denominator: typev3.FractionalPercent_MILLION}
}

// clusterPolicy sets what MeshTimeout, MeshCircuitBreaker and
// MeshHealthCheck configure on the cluster of a destination.
func clusterPolicy(c *clusterv3.Cluster, protocol string, tc *toConf) error {
	if t := tc.Timeout; t != nil {
		if t.ConnectionTimeout != nil {
			c.ConnectTimeout = dur(t.ConnectionTimeout)
		}
		if isHTTP(protocol) {
			if err := setCommonHTTPOptions(c, protocol, commonHTTPOptions(t)); err != nil {
				return err
			}
		}
	}
	if b := tc.Breaker; b != nil {
		if l := b.ConnectionLimits; l != nil {
			c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
				Priority:           corev3.RoutingPriority_DEFAULT,
				MaxConnections:     u32(l.MaxConnections),
				MaxPendingRequests: u32(l.MaxPendingRequests),
				MaxRequests:        u32(l.MaxRequests),
				MaxRetries:         u32(l.MaxRetries),
				MaxConnectionPools: u32(l.MaxConnectionPools),
			}}}
		}
		if o := b.OutlierDetection; o != nil && (o.Disabled == nil || !*o.Disabled) {
			c.OutlierDetection = outlierDetection(o)
			if o.HealthyPanicThreshold != nil {
				lbConfig(c).HealthyPanicThreshold = &typev3.Percent{Value: o.HealthyPanicThreshold.Float64()}
			}
		}
	}
	if h := tc.Health; h != nil {
		hc, err := healthCheck(h, protocol)
		if err != nil {
			return err
		}
		if hc != nil {
			c.HealthChecks = []*corev3.HealthCheck{hc}
		}
		if h.HealthyPanicThreshold != nil {
			lbConfig(c).HealthyPanicThreshold = &typev3.Percent{Value: h.HealthyPanicThreshold.Float64()}
		}
		if h.FailTrafficOnPanic != nil {
			lbConfig(c).LocalityConfigSpecifier = &clusterv3.Cluster_CommonLbConfig_ZoneAwareLbConfig_{
				ZoneAwareLbConfig: &clusterv3.Cluster_CommonLbConfig_ZoneAwareLbConfig{FailTrafficOnPanic: *h.FailTrafficOnPanic},
			}
		}
	}
	return nil
}

func lbConfig(c *clusterv3.Cluster) *clusterv3.Cluster_CommonLbConfig {
	if c.CommonLbConfig == nil {
		c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{}
	}
	return c.CommonLbConfig
}

// commonHTTPOptions are MeshTimeout's connection-level HTTP timeouts, nil
// when none is set.
func commonHTTPOptions(t *resource.MeshTimeoutConf) *corev3.HttpProtocolOptions {
	o := &corev3.HttpProtocolOptions{IdleTimeout: dur(t.IdleTimeout)}
	if h := t.HTTP; h != nil {
		o.MaxStreamDuration = dur(h.MaxStreamDuration)
		o.MaxConnectionDuration = dur(h.MaxConnectionDuration)
	}
	if o.IdleTimeout == nil && o.MaxStreamDuration == nil && o.MaxConnectionDuration == nil {
		return nil
	}
	return o
}

// setCommonHTTPOptions puts common HTTP options into the cluster's
// upstream HTTP protocol options, keeping its HTTP version.
func setCommonHTTPOptions(c *clusterv3.Cluster, protocol string, common *corev3.HttpProtocolOptions) error {
	if common == nil {
		return nil
	}
	opts := &httpv3.HttpProtocolOptions{CommonHttpProtocolOptions: common}
	if isHTTP2(protocol) {
		opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}}
	} else {
		opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
		}}
	}
	a, err := pack(opts)
	if err != nil {
		return err
	}
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{protoName(opts): a}
	return nil
}

// outlierDetection enables exactly the detectors the policy names: Envoy
// enables the consecutive-5xx and success-rate detectors by default, Kuma
// policies turn on what they list.
func outlierDetection(o *resource.OutlierDetection) *clusterv3.OutlierDetection {
	zero, full := wrapperspb.UInt32(0), wrapperspb.UInt32(100)
	od := &clusterv3.OutlierDetection{
		Interval:                           dur(o.Interval),
		BaseEjectionTime:                   dur(o.BaseEjectionTime),
		MaxEjectionPercent:                 u32(o.MaxEjectionPercent),
		EnforcingConsecutive_5Xx:           zero,
		EnforcingConsecutiveGatewayFailure: zero,
		EnforcingSuccessRate:               zero,
		EnforcingFailurePercentage:         zero,
	}
	if o.SplitExternalAndLocalErrors != nil {
		od.SplitExternalLocalOriginErrors = *o.SplitExternalAndLocalErrors
	}
	d := o.Detectors
	if d == nil {
		return od
	}
	if f := d.TotalFailures; f != nil {
		od.Consecutive_5Xx, od.EnforcingConsecutive_5Xx = u32(f.Consecutive), full
	}
	if f := d.GatewayFailures; f != nil {
		od.ConsecutiveGatewayFailure, od.EnforcingConsecutiveGatewayFailure = u32(f.Consecutive), full
	}
	if f := d.LocalOriginFailures; f != nil {
		od.SplitExternalLocalOriginErrors = true
		od.ConsecutiveLocalOriginFailure, od.EnforcingConsecutiveLocalOriginFailure = u32(f.Consecutive), full
	}
	if s := d.SuccessRate; s != nil {
		od.EnforcingSuccessRate = full
		od.SuccessRateMinimumHosts, od.SuccessRateRequestVolume = u32(s.MinimumHosts), u32(s.RequestVolume)
		if s.StandardDeviationFactor != nil {
			od.SuccessRateStdevFactor = wrapperspb.UInt32(uint32(math.Round(s.StandardDeviationFactor.Float64() * 1000)))
		}
	}
	if f := d.FailurePercentage; f != nil {
		od.EnforcingFailurePercentage = full
		od.FailurePercentageMinimumHosts, od.FailurePercentageRequestVolume = u32(f.MinimumHosts), u32(f.RequestVolume)
		od.FailurePercentageThreshold = u32(f.Threshold)
	}
	return od
}

// healthCheck is the active health check of a destination: HTTP for HTTP
// services, gRPC for gRPC ones, TCP otherwise (and when the protocol's
// checker is disabled). Nil when every applicable checker is disabled.
func healthCheck(h *resource.MeshHealthCheckConf, protocol string) (*corev3.HealthCheck, error) {
	hc := &corev3.HealthCheck{
		Interval:           durationpb.New(healthCheckInterval),
		Timeout:            durationpb.New(healthCheckTimeout),
		UnhealthyThreshold: wrapperspb.UInt32(healthCheckUnhealthyThreshold),
		HealthyThreshold:   wrapperspb.UInt32(healthCheckHealthyThreshold),
		InitialJitter:      dur(h.InitialJitter),
		IntervalJitter:     dur(h.IntervalJitter),
		NoTrafficInterval:  dur(h.NoTrafficInterval),
	}
	if h.Interval != nil {
		hc.Interval = dur(h.Interval)
	}
	if h.Timeout != nil {
		hc.Timeout = dur(h.Timeout)
	}
	if h.UnhealthyThreshold != nil {
		hc.UnhealthyThreshold = wrapperspb.UInt32(uint32(*h.UnhealthyThreshold))
	}
	if h.HealthyThreshold != nil {
		hc.HealthyThreshold = wrapperspb.UInt32(uint32(*h.HealthyThreshold))
	}
	if h.IntervalJitterPercent != nil {
		hc.IntervalJitterPercent = uint32(*h.IntervalJitterPercent)
	}
	if h.ReuseConnection != nil {
		hc.ReuseConnection = wrapperspb.Bool(*h.ReuseConnection)
	}
	disabled := func(b *bool) bool { return b != nil && *b }
	switch {
	case protocol == resource.ProtocolGRPC && (h.GRPC == nil || !disabled(h.GRPC.Disabled)):
		g := &corev3.HealthCheck_GrpcHealthCheck{}
		if h.GRPC != nil {
			g.ServiceName = deref(h.GRPC.ServiceName)
			g.Authority = deref(h.GRPC.Authority)
		}
		hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: g}
	case isHTTP(protocol) && protocol != resource.ProtocolGRPC && (h.HTTP == nil || !disabled(h.HTTP.Disabled)):
		hh := &corev3.HealthCheck_HttpHealthCheck{Path: "/"}
		if isHTTP2(protocol) {
			hh.CodecClientType = typev3.CodecClientType_HTTP2
		}
		if p := h.HTTP; p != nil {
			if p.Path != nil {
				hh.Path = *p.Path
			}
			for _, s := range p.ExpectedStatuses {
				hh.ExpectedStatuses = append(hh.ExpectedStatuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
			}
			hh.RequestHeadersToAdd = headerOptions(p.RequestHeadersToAdd)
		}
		hc.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: hh}
	case h.TCP == nil || !disabled(h.TCP.Disabled):
		t := &corev3.HealthCheck_TcpHealthCheck{}
		if p := h.TCP; p != nil {
			if p.Send != nil {
				b, err := base64.StdEncoding.DecodeString(*p.Send)
				if err != nil {
					return nil, fmt.Errorf("generate: MeshHealthCheck tcp.send is not base64: %w", err)
				}
				t.Send = &corev3.HealthCheck_Payload{Payload: &corev3.HealthCheck_Payload_Binary{Binary: b}}
			}
			for _, r := range p.Receive {
				b, err := base64.StdEncoding.DecodeString(r)
				if err != nil {
					return nil, fmt.Errorf("generate: MeshHealthCheck tcp.receive is not base64: %w", err)
				}
				t.Receive = append(t.Receive, &corev3.HealthCheck_Payload{Payload: &corev3.HealthCheck_Payload_Binary{Binary: b}})
			}
		}
		hc.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: t}
	default:
		return nil, nil
	}
	return hc, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// headerOptions turns set/add header lists into Envoy header options.
func headerOptions(h *resource.HeaderAdditions) []*corev3.HeaderValueOption {
	if h == nil {
		return nil
	}
	var out []*corev3.HeaderValueOption
	for _, kv := range h.Set {
		out = append(out, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv.Name, Value: kv.Value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	}
	for _, kv := range h.Add {
		out = append(out, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv.Name, Value: kv.Value},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD})
	}
	return out
}

// routePolicy sets MeshTimeout's and MeshRetry's per-request settings on
// the route of a destination.
func routePolicy(ra *routev3.RouteAction, protocol string, tc *toConf) error {
	if t := tc.Timeout; t != nil && t.HTTP != nil {
		ra.Timeout = dur(t.HTTP.RequestTimeout)
		ra.IdleTimeout = dur(t.HTTP.StreamIdleTimeout)
	}
	if r := tc.Retry; r != nil {
		rp, err := retryPolicy(r, protocol)
		if err != nil {
			return err
		}
		ra.RetryPolicy = rp
	}
	return nil
}

// Kuma's retryOn names and Envoy's retry_on conditions.
var (
	httpRetryOn = map[string]string{
		"5xx": "5xx", "5XX": "5xx", "GatewayError": "gateway-error", "Reset": "reset", "Retriable4xx": "retriable-4xx",
		"ConnectFailure": "connect-failure", "EnvoyRatelimited": "envoy-ratelimited", "RefusedStream": "refused-stream",
		"Http3PostConnectFailure": "http3-post-connect-failure",
	}
	grpcRetryOn = map[string]string{
		"Canceled": "cancelled", "DeadlineExceeded": "deadline-exceeded", "Internal": "internal",
		"ResourceExhausted": "resource-exhausted", "Unavailable": "unavailable",
	}
)

// httpMethodPrefix starts Kuma's retryOn values that restrict retries to
// a request method (HttpMethodGet...).
const httpMethodPrefix = "HttpMethod"

// retryPolicy is the route retry policy of MeshRetry: its grpc section for
// gRPC services, its http section for other HTTP services. Nil when the
// section that applies is absent.
func retryPolicy(r *resource.MeshRetryConf, protocol string) (*routev3.RetryPolicy, error) {
	rp := &routev3.RetryPolicy{}
	var on []string
	if protocol == resource.ProtocolGRPC && r.GRPC != nil {
		g := r.GRPC
		rp.NumRetries, rp.PerTryTimeout = u32(g.NumRetries), dur(g.PerTryTimeout)
		rp.RetryBackOff, rp.RateLimitedRetryBackOff = backOff(g.BackOff), rateLimitedBackOff(g.RateLimitedBackOff)
		for _, v := range g.RetryOn {
			on = append(on, grpcRetryOn[v])
		}
	} else if r.HTTP != nil {
		h := r.HTTP
		rp.NumRetries, rp.PerTryTimeout = u32(h.NumRetries), dur(h.PerTryTimeout)
		rp.RetryBackOff, rp.RateLimitedRetryBackOff = backOff(h.BackOff), rateLimitedBackOff(h.RateLimitedBackOff)
		for _, v := range h.RetryOn {
			switch {
			case httpRetryOn[v] != "":
				on = append(on, httpRetryOn[v])
			case strings.HasPrefix(v, httpMethodPrefix):
				method := strings.ToUpper(strings.TrimPrefix(v, httpMethodPrefix))
				rp.RetriableRequestHeaders = append(rp.RetriableRequestHeaders, &routev3.HeaderMatcher{Name: ":method",
					HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(method)}})
			default:
				code, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("generate: MeshRetry http.retryOn value %q is neither a condition nor a status code", v)
				}
				rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, uint32(code))
			}
		}
		if len(rp.RetriableStatusCodes) > 0 {
			on = append(on, "retriable-status-codes")
		}
		for _, m := range h.RetriableResponseHeaders {
			rp.RetriableHeaders = append(rp.RetriableHeaders, headerMatcher(m))
		}
		for _, m := range h.RetriableRequestHeaders {
			rp.RetriableRequestHeaders = append(rp.RetriableRequestHeaders, headerMatcher(m))
		}
		if err := hostSelection(rp, h); err != nil {
			return nil, err
		}
	} else {
		return nil, nil
	}
	if len(on) == 0 && len(rp.RetriableRequestHeaders) == 0 {
		// Envoy retries nothing without a condition. Without retryOn,
		// retry only what never reached the app (HTTP), or the gRPC codes
		// Kuma retries by default.
		on = []string{"connect-failure", "refused-stream"}
		if protocol == resource.ProtocolGRPC {
			on = []string{"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
		}
	} else if len(on) == 0 {
		// Only methods were named: retry their requests on what never
		// reached the app and on 5xx.
		on = []string{"connect-failure", "refused-stream", "5xx"}
	}
	rp.RetryOn = strings.Join(on, ",")
	return rp, nil
}

func hostSelection(rp *routev3.RetryPolicy, h *resource.MeshRetryHTTP) error {
	for _, p := range h.HostSelection {
		switch p.Predicate {
		case "OmitPreviousHosts":
			a, err := pack(&previoushostsv3.PreviousHostsPredicate{})
			if err != nil {
				return err
			}
			rp.RetryHostPredicate = append(rp.RetryHostPredicate, &routev3.RetryPolicy_RetryHostPredicate{
				Name: retryPreviousHosts, ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: a}})
		case "OmitPreviousPriorities":
			freq := p.UpdateFrequency
			if freq <= 0 {
				freq = 2
			}
			a, err := pack(&previousprioritiesv3.PreviousPrioritiesConfig{UpdateFrequency: freq})
			if err != nil {
				return err
			}
			rp.RetryPriority = &routev3.RetryPolicy_RetryPriority{Name: retryPreviousPriorities,
				ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: a}}
		}
	}
	if h.HostSelectionMaxAttempts != nil {
		rp.HostSelectionRetryMaxAttempts = *h.HostSelectionMaxAttempts
	}
	return nil
}

func backOff(b *resource.RetryBackOff) *routev3.RetryPolicy_RetryBackOff {
	if b == nil || b.BaseInterval == nil {
		return nil
	}
	return &routev3.RetryPolicy_RetryBackOff{BaseInterval: dur(b.BaseInterval), MaxInterval: dur(b.MaxInterval)}
}

func rateLimitedBackOff(b *resource.RateLimitedBackOff) *routev3.RetryPolicy_RateLimitedRetryBackOff {
	if b == nil || len(b.ResetHeaders) == 0 {
		return nil
	}
	out := &routev3.RetryPolicy_RateLimitedRetryBackOff{MaxInterval: dur(b.MaxInterval)}
	for _, h := range b.ResetHeaders {
		f := routev3.RetryPolicy_SECONDS
		if h.Format == "UnixTimestamp" {
			f = routev3.RetryPolicy_UNIX_TIMESTAMP
		}
		out.ResetHeaders = append(out.ResetHeaders, &routev3.RetryPolicy_ResetHeader{Name: h.Name, Format: f})
	}
	return out
}

func exact(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

// headerMatcher is Envoy's form of a Kuma header match.
func headerMatcher(m resource.HeaderMatch) *routev3.HeaderMatcher {
	hm := &routev3.HeaderMatcher{Name: strings.ToLower(m.Name)}
	switch m.Type {
	case resource.HeaderMatchPresent:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	case resource.HeaderMatchAbsent:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		hm.InvertMatch = true
	case resource.HeaderMatchPrefix:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: m.Value}}}
	case resource.HeaderMatchRegularExpression:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
			SafeRegex: &matcherv3.RegexMatcher{Regex: m.Value}}}}
	default:
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: exact(m.Value)}
	}
	return hm
}

// outboundHTTPOptions adds, before the default route, the routes of the
// requests ecsmesh's filter sends to service (x-ecsmesh-cluster:
// service): one per MeshHTTPRoute match, then one for the rest, each
// carrying MeshTimeout's and MeshRetry's per-request settings. Nil when tc
// sets none of these.
func outboundHTTPOptions(service, protocol string, tc *toConf) (*hcmOptions, error) {
	if tc == nil {
		return nil, nil
	}
	o := &hcmOptions{}
	var err error
	if o.accessLogs, err = accessLogs(tc.AccessLog, logContext{mesh: tc.mesh, direction: directionOutbound, service: service}); err != nil {
		return nil, err
	}
	if o.tracing, err = tracing(tc.Trace, traceSide{outbound: true, service: service, ids: tc.destIDs}); err != nil {
		return nil, err
	}
	for _, hr := range tc.HTTPRoutes {
		r, err := httpRoute(service, protocol, hr, tc)
		if err != nil {
			return nil, err
		}
		o.routes = append(o.routes, r)
	}
	ra := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: service}}
	if err := routePolicy(ra, protocol, tc); err != nil {
		return nil, err
	}
	if ra.Timeout != nil || ra.IdleTimeout != nil || ra.RetryPolicy != nil {
		r := prefixRoute(ra)
		r.Name = service
		r.Match.Headers = []*routev3.HeaderMatcher{{Name: filter.HeaderCluster, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(service)}}}
		o.routes = append(o.routes, r)
	}
	if len(o.routes) == 0 && o.accessLogs == nil && o.tracing == nil {
		return nil, nil
	}
	return o, nil
}

// outboundTCPOptions are MeshTCPRoute's backends, MeshTimeout's
// idleTimeout and MeshRetry's tcp.maxConnectAttempt for a TCP
// destination; nil when tc is.
func outboundTCPOptions(service string, tc *toConf) (*tcpOptions, error) {
	if tc == nil {
		return nil, nil
	}
	o := &tcpOptions{}
	var err error
	if o.accessLogs, err = accessLogs(tc.AccessLog, logContext{mesh: tc.mesh, direction: directionOutbound, service: service, tcp: true}); err != nil {
		return nil, err
	}
	if tc.TCPRoute != nil {
		o.backends = tc.TCPRoute.BackendRefs
		if o.backends == nil {
			o.backends = []resource.BackendRef{}
		}
	}
	if tc.Timeout != nil {
		o.idleTimeout = dur(tc.Timeout.IdleTimeout)
	}
	if tc.Retry != nil && tc.Retry.TCP != nil {
		o.maxConnectAttempts = u32(tc.Retry.TCP.MaxConnectAttempt)
	}
	return o, nil
}
