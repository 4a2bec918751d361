package generate

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	filelogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	grpclogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	otellogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	otlpcommonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
)

// Traffic directions of access log lines.
const (
	directionInbound  = "INBOUND"
	directionOutbound = "OUTBOUND"
)

// logContext is what Kuma's placeholders stand for on one listener.
type logContext struct {
	mesh, direction, service string // service: the destination (outbound) or the inbound's
	tcp                      bool
}

// placeholders maps Kuma's access log placeholders to their values (or
// Envoy command operators) on a listener.
func (lc logContext) placeholders() *strings.Replacer {
	src, srcAddr := "%DOWNSTREAM_PEER_URI_SAN%", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
	if lc.direction == directionOutbound {
		// The listeners of calls are shared by every caller: read the
		// caller's own values from Envoy's environment (the agent sets
		// them).
		src, srcAddr = "%ENVIRONMENT("+dpapi.EnvoyEnvService+")%", "%ENVIRONMENT("+dpapi.EnvoyEnvAddress+")%"
	}
	return strings.NewReplacer(
		"%KUMA_MESH%", lc.mesh,
		"%KUMA_TRAFFIC_DIRECTION%", lc.direction,
		"%KUMA_DESTINATION_SERVICE%", lc.service,
		"%KUMA_SOURCE_SERVICE%", src,
		"%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%", srcAddr,
		"%KUMA_SOURCE_ADDRESS%", srcAddr,
	)
}

// DefaultAccessLogFields is the JSON line written when a backend names no
// format: one object per request (or TCP connection) that CloudWatch Logs
// Insights parses as is. The keys, in the order documented.
var DefaultAccessLogFields = []resource.AccessLogJSONField{
	{Key: "time", Value: "%START_TIME%"},
	{Key: "mesh", Value: "%KUMA_MESH%"},
	{Key: "direction", Value: "%KUMA_TRAFFIC_DIRECTION%"},
	{Key: "source_spiffe_id", Value: "%SOURCE_SPIFFE_ID%"},
	{Key: "destination_spiffe_id", Value: "%DESTINATION_SPIFFE_ID%"},
	{Key: "source_service", Value: "%KUMA_SOURCE_SERVICE%"},
	{Key: "destination_service", Value: "%KUMA_DESTINATION_SERVICE%"},
	{Key: "method", Value: "%REQ(:METHOD)%"},
	{Key: "path", Value: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
	{Key: "authority", Value: "%REQ(:AUTHORITY)%"},
	{Key: "protocol", Value: "%PROTOCOL%"},
	{Key: "status", Value: "%RESPONSE_CODE%"},
	{Key: "response_flags", Value: "%RESPONSE_FLAGS%"},
	{Key: "duration_ms", Value: "%DURATION%"},
	{Key: "bytes_received", Value: "%BYTES_RECEIVED%"},
	{Key: "bytes_sent", Value: "%BYTES_SENT%"},
	{Key: "upstream_host", Value: "%UPSTREAM_HOST%"},
	{Key: "upstream_cluster", Value: "%UPSTREAM_CLUSTER%"},
	{Key: "request_id", Value: "%REQ(X-REQUEST-ID)%"},
	{Key: "trace_id", Value: "%TRACE_ID%"},
	{Key: "x_amzn_trace_id", Value: "%REQ(X-AMZN-TRACE-ID)%"},
}

// httpOnlyFields are left out of the default line on TCP listeners.
var httpOnlyFields = map[string]bool{"method": true, "path": true, "authority": true, "request_id": true, "trace_id": true, "x_amzn_trace_id": true, "status": true}

// identity operators: the peer SPIFFE IDs of the connection, as Envoy
// knows them from the certificates.
func (lc logContext) identities() (src, dst string) {
	if lc.direction == directionOutbound {
		return "%UPSTREAM_LOCAL_URI_SAN%", "%UPSTREAM_PEER_URI_SAN%"
	}
	return "%DOWNSTREAM_PEER_URI_SAN%", "%DOWNSTREAM_LOCAL_URI_SAN%"
}

// format renders a backend's format (or the default) for lc.
func (lc logContext) format(f *resource.AccessLogFormat) (*corev3.SubstitutionFormatString, error) {
	src, dst := lc.identities()
	r := lc.placeholders()
	sub := func(s string) string {
		return r.Replace(strings.NewReplacer("%SOURCE_SPIFFE_ID%", src, "%DESTINATION_SPIFFE_ID%", dst).Replace(s))
	}
	if f != nil && f.Type == resource.AccessLogFormatPlain {
		return &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: sub(f.Plain) + "\n"}}},
			OmitEmptyValues: f.OmitEmptyValues != nil && *f.OmitEmptyValues,
		}, nil
	}
	fields, omit := DefaultAccessLogFields, false
	if f != nil {
		fields, omit = f.JSON, f.OmitEmptyValues != nil && *f.OmitEmptyValues
	}
	m := map[string]any{}
	for _, kv := range fields {
		if f == nil && lc.tcp && httpOnlyFields[kv.Key] {
			continue
		}
		m[kv.Key] = sub(kv.Value)
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("generate: MeshAccessLog json format: %w", err)
	}
	return &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st}, OmitEmptyValues: omit}, nil
}

// accessLogs are Envoy's access loggers for a MeshAccessLog configuration
// on one listener (nil conf: none).
func accessLogs(conf *resource.MeshAccessLogConf, lc logContext) ([]*accesslogv3.AccessLog, error) {
	if conf == nil {
		return nil, nil
	}
	var out []*accesslogv3.AccessLog
	for _, b := range conf.Backends {
		var name string
		var cfg proto.Message
		switch b.Type {
		case resource.AccessLogFile:
			f, err := lc.format(b.File.Format)
			if err != nil {
				return nil, err
			}
			name, cfg = accessLogFile, &filelogv3.FileAccessLog{Path: b.File.Path, AccessLogFormat: &filelogv3.FileAccessLog_LogFormat{LogFormat: f}}
		case resource.AccessLogOpenTelemetry:
			o, err := lc.otel(b.OpenTelemetry)
			if err != nil {
				return nil, err
			}
			name, cfg = accessLogOpenTelemetry, o
		default:
			return nil, fmt.Errorf("generate: MeshAccessLog backend type %q", b.Type)
		}
		a, err := pack(cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, &accesslogv3.AccessLog{Name: name, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}})
	}
	return out, nil
}

// otel is the OpenTelemetry access logger of a backend: OTLP/gRPC to the
// collector's cluster (see collectorCluster).
func (lc logContext) otel(b *resource.AccessLogOTelBackend) (*otellogv3.OpenTelemetryAccessLogConfig, error) {
	r := lc.placeholders()
	src, dst := lc.identities()
	sub := strings.NewReplacer("%SOURCE_SPIFFE_ID%", src, "%DESTINATION_SPIFFE_ID%", dst)
	// common_config is deprecated in the newest API in favour of
	// grpc_service, which older Envoys ignore; every Envoy reads it.
	o := &otellogv3.OpenTelemetryAccessLogConfig{
		//lint:ignore SA1019 common_config is what every supported Envoy reads (grpc_service is newer)
		CommonConfig: &grpclogv3.CommonGrpcAccessLogConfig{
			LogName:             "ecsmesh",
			TransportApiVersion: corev3.ApiVersion_V3,
			GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: CollectorCluster(b.Endpoint)}}},
		},
	}
	if b.Body != nil {
		raw, err := json.Marshal(b.Body)
		if err != nil {
			return nil, err
		}
		v := &otlpcommonv1.AnyValue{}
		if err := protojson.Unmarshal([]byte(r.Replace(sub.Replace(string(raw)))), v); err != nil {
			return nil, fmt.Errorf("generate: MeshAccessLog openTelemetry.body: %w", err)
		}
		o.Body = v
	}
	if len(b.Attributes) > 0 {
		o.Attributes = &otlpcommonv1.KeyValueList{}
		for _, a := range b.Attributes {
			o.Attributes.Values = append(o.Attributes.Values, &otlpcommonv1.KeyValue{Key: a.Key,
				Value: &otlpcommonv1.AnyValue{Value: &otlpcommonv1.AnyValue_StringValue{StringValue: r.Replace(sub.Replace(a.Value))}}})
		}
	}
	return o, nil
}

// CollectorCluster names the cluster of an OpenTelemetry collector.
func CollectorCluster(endpoint string) string { return "otel:" + endpoint }

// collectorCluster is a plain HTTP/2 cluster resolving an OpenTelemetry
// collector's host by DNS.
func collectorCluster(endpoint string) (*Resource, error) {
	return dnsCluster(CollectorCluster(endpoint), endpoint, true)
}

// dnsCluster is a plain (no TLS) STRICT_DNS cluster to host:port,
// speaking HTTP/2 when http2.
func dnsCluster(name, hostPort string, http2 bool) (*Resource, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, fmt.Errorf("generate: collector %q: %w", hostPort, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("generate: collector %q: %w", hostPort, err)
	}
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: socketAddress(host, p),
			}}}},
		}}},
	}
	if http2 {
		if c.TypedExtensionProtocolOptions, err = http2Options(); err != nil {
			return nil, err
		}
	}
	return newResource(name, c)
}

// collectorEndpoints lists the OpenTelemetry endpoints of the mesh's
// MeshAccessLogs.
func collectorEndpoints(ps []*resource.MeshAccessLog) []string {
	seen := map[string]bool{}
	var out []string
	add := func(c resource.MeshAccessLogConf) {
		for _, b := range c.Backends {
			if b.OpenTelemetry != nil && !seen[b.OpenTelemetry.Endpoint] {
				seen[b.OpenTelemetry.Endpoint] = true
				out = append(out, b.OpenTelemetry.Endpoint)
			}
		}
	}
	for _, p := range ps {
		for _, e := range p.Spec.To {
			add(e.Default)
		}
		for _, e := range p.Spec.From {
			add(e.Default)
		}
		for _, e := range p.Spec.Rules {
			add(e.Default)
		}
	}
	return out
}

// collectors adds the cluster of every OpenTelemetry collector the mesh's
// MeshAccessLogs name to every View (and to every Dataplane, whatever it
// may reach).
func (m *Mesh) collectors() error {
	for _, ep := range collectorEndpoints(m.policies.ps.AccessLogs) {
		c, err := collectorCluster(ep)
		if err != nil {
			return err
		}
		m.subsets = append(m.subsets, c)
		m.Clusters = append(m.Clusters, c)
		m.ClusterByName[c.Name] = c
		m.infra[c.Name] = true
	}
	return nil
}
