package generate

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingv3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

// Span tags ecsmesh adds to every span of a traced HCM.
const (
	TagPeerSpiffeID    = "ecsmesh.peer.spiffe_id"
	TagLocalSpiffeID   = "ecsmesh.local.spiffe_id"
	TagSourceService   = "ecsmesh.source.service"
	TagDestService     = "ecsmesh.destination.service"
	TagDestSpiffeIDs   = "ecsmesh.destination.spiffe_ids"
	tracerZipkin       = "envoy.tracers.zipkin"
	tracerDatadog      = "envoy.tracers.datadog"
	tracerOpenTelemtry = "envoy.tracers.opentelemetry"
)

// traceSide is what a traced HCM knows of its traffic.
type traceSide struct {
	outbound bool
	// service is the destination (outbound) or the inbound's service;
	// ids are the destination's SPIFFE IDs (outbound) or the Dataplane's
	// own (inbound).
	service string
	ids     []string
}

// tracing is the HCM tracing of a MeshTrace configuration, nil when it
// names no backend.
func tracing(c *resource.MeshTraceConf, side traceSide) (*hcmv3.HttpConnectionManager_Tracing, error) {
	if c == nil || len(c.Backends) == 0 {
		return nil, nil
	}
	b := c.Backends[0]
	var name string
	var cfg proto.Message
	serviceName := ""
	if !side.outbound {
		serviceName = side.service
	}
	switch b.Type {
	case resource.TraceZipkin:
		u, err := url.Parse(b.Zipkin.URL)
		if err != nil {
			return nil, fmt.Errorf("generate: MeshTrace zipkin.url: %w", err)
		}
		z := &tracev3.ZipkinConfig{
			CollectorCluster: TraceCluster(b), CollectorEndpoint: u.RequestURI(), CollectorHostname: u.Hostname(),
			CollectorEndpointVersion: tracev3.ZipkinConfig_HTTP_JSON, SharedSpanContext: wrapperspb.Bool(true),
		}
		if b.Zipkin.APIVersion == "httpProto" {
			z.CollectorEndpointVersion = tracev3.ZipkinConfig_HTTP_PROTO
		}
		if b.Zipkin.TraceID128bit != nil {
			z.TraceId_128Bit = *b.Zipkin.TraceID128bit
		}
		if b.Zipkin.SharedSpanContext != nil {
			z.SharedSpanContext = wrapperspb.Bool(*b.Zipkin.SharedSpanContext)
		}
		name, cfg = tracerZipkin, z
	case resource.TraceDatadog:
		u, err := url.Parse(b.Datadog.URL)
		if err != nil {
			return nil, fmt.Errorf("generate: MeshTrace datadog.url: %w", err)
		}
		if serviceName != "" && b.Datadog.SplitService != nil && *b.Datadog.SplitService {
			serviceName += "_INBOUND"
		}
		name, cfg = tracerDatadog, &tracev3.DatadogConfig{CollectorCluster: TraceCluster(b), ServiceName: serviceName, CollectorHostname: u.Hostname()}
	case resource.TraceOpenTelemetry:
		name, cfg = tracerOpenTelemtry, &tracev3.OpenTelemetryConfig{ServiceName: serviceName,
			GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: TraceCluster(b)}}}}
	default:
		return nil, fmt.Errorf("generate: MeshTrace backend type %q", b.Type)
	}
	a, err := pack(cfg)
	if err != nil {
		return nil, err
	}
	t := &hcmv3.HttpConnectionManager_Tracing{Provider: &tracev3.Tracing_Http{Name: name, ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: a}}}
	if s := c.Sampling; s != nil {
		pct := func(n *resource.Number) *typev3.Percent {
			if n == nil {
				return nil
			}
			return &typev3.Percent{Value: n.Float64()}
		}
		t.OverallSampling, t.ClientSampling, t.RandomSampling = pct(s.Overall), pct(s.Client), pct(s.Random)
	}
	for _, tag := range c.Tags {
		ct := &tracingv3.CustomTag{Tag: tag.Name}
		if tag.Header != nil {
			ct.Type = &tracingv3.CustomTag_RequestHeader{RequestHeader: &tracingv3.CustomTag_Header{Name: strings.ToLower(tag.Header.Name), DefaultValue: tag.Header.Default}}
		} else {
			ct.Type = &tracingv3.CustomTag_Literal_{Literal: &tracingv3.CustomTag_Literal{Value: tag.Literal}}
		}
		t.CustomTags = append(t.CustomTags, ct)
	}
	literal := func(tag, v string) *tracingv3.CustomTag {
		return &tracingv3.CustomTag{Tag: tag, Type: &tracingv3.CustomTag_Literal_{Literal: &tracingv3.CustomTag_Literal{Value: v}}}
	}
	if side.outbound {
		t.CustomTags = append(t.CustomTags,
			&tracingv3.CustomTag{Tag: TagSourceService, Type: &tracingv3.CustomTag_Environment_{Environment: &tracingv3.CustomTag_Environment{Name: dpapi.EnvoyEnvService}}},
			literal(TagDestService, side.service), literal(TagDestSpiffeIDs, strings.Join(side.ids, ",")))
	} else {
		// The caller's identity as ecsmesh's filter verified it (it
		// strips any such header the caller sent).
		t.CustomTags = append(t.CustomTags,
			&tracingv3.CustomTag{Tag: TagPeerSpiffeID, Type: &tracingv3.CustomTag_RequestHeader{RequestHeader: &tracingv3.CustomTag_Header{Name: filter.HeaderPeerID}}},
			literal(TagLocalSpiffeID, strings.Join(side.ids, ",")), literal(TagDestService, side.service))
	}
	return t, nil
}

// TraceCluster names the cluster of a trace backend's collector.
func TraceCluster(b resource.TraceBackend) string {
	switch b.Type {
	case resource.TraceZipkin:
		u, _ := url.Parse(b.Zipkin.URL)
		return "zipkin:" + hostPort(u)
	case resource.TraceDatadog:
		u, _ := url.Parse(b.Datadog.URL)
		return "datadog:" + hostPort(u)
	case resource.TraceOpenTelemetry:
		return CollectorCluster(b.OpenTelemetry.Endpoint)
	}
	return ""
}

func hostPort(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// traceCollectors adds the clusters of the mesh's MeshTrace collectors to
// every View and every Dataplane: HTTP/1.1 for Zipkin and Datadog, HTTP/2
// for OpenTelemetry.
func (m *Mesh) traceCollectors() error {
	seen := map[string]bool{}
	for _, p := range m.policies.ps.Traces {
		for _, b := range p.Spec.Default.Backends {
			name := TraceCluster(b)
			if seen[name] || m.infra[name] {
				continue
			}
			seen[name] = true
			var c *Resource
			var err error
			if b.Type == resource.TraceOpenTelemetry {
				c, err = collectorCluster(b.OpenTelemetry.Endpoint)
			} else {
				c, err = httpCollectorCluster(name)
			}
			if err != nil {
				return err
			}
			m.subsets = append(m.subsets, c)
			m.Clusters = append(m.Clusters, c)
			m.ClusterByName[c.Name] = c
			m.infra[c.Name] = true
		}
	}
	return nil
}

// httpCollectorCluster is a plain HTTP/1.1 DNS cluster for "<kind>:host:port".
func httpCollectorCluster(name string) (*Resource, error) {
	_, hp, _ := strings.Cut(name, ":")
	return dnsCluster(name, hp, false)
}
