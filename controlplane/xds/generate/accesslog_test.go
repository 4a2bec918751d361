package generate

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	filelogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	otellogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

const accessLogPolicy = `
type: MeshAccessLog
mesh: default
name: everything
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default: {backends: [{type: File, file: {path: /dev/stdout}}]}
  from:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - {type: File, file: {path: /dev/stdout, format: {type: Plain, plain: "%KUMA_MESH% %KUMA_SOURCE_SERVICE% -> %KUMA_DESTINATION_SERVICE% %RESPONSE_CODE%"}}}
      - type: OpenTelemetry
        openTelemetry:
          endpoint: otel-collector:4317
          body: {stringValue: "%KUMA_MESH% %REQ(:PATH)%"}
          attributes: [{key: direction, value: "%KUMA_TRAFFIC_DIRECTION%"}]
`

// sampleOperators are Envoy command operators with a sample value: the
// only operators the generated formats may use.
var sampleOperators = map[string]string{
	"START_TIME": "2026-12-05T10:00:00.000Z", "REQ(:METHOD)": "GET", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)": "/orders",
	"REQ(:AUTHORITY)": "api.mesh.local:8080", "PROTOCOL": "HTTP/1.1", "RESPONSE_CODE": "200", "RESPONSE_FLAGS": "-",
	"DURATION": "12", "BYTES_RECEIVED": "0", "BYTES_SENT": "342", "UPSTREAM_HOST": "10.0.1.20:15000",
	"UPSTREAM_CLUSTER": "api", "REQ(X-REQUEST-ID)": "7c1d", "TRACE_ID": "4bf92f3577b34da6a3ce929d0e0e4736",
	"REQ(X-AMZN-TRACE-ID)":   "Root=1-5759e988-bd862e3fe1be46a994272793",
	"UPSTREAM_LOCAL_URI_SAN": "spiffe://default.mesh.local/workload/web", "UPSTREAM_PEER_URI_SAN": "spiffe://default.mesh.local/workload/api",
	"DOWNSTREAM_PEER_URI_SAN": "spiffe://default.mesh.local/workload/web", "DOWNSTREAM_LOCAL_URI_SAN": "spiffe://default.mesh.local/workload/api",
	"ENVIRONMENT(ECSMESH_SERVICE)": "web", "ENVIRONMENT(ECSMESH_ADDRESS)": "10.0.1.10",
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": "10.0.1.10",
}

var operatorRE = regexp.MustCompile(`%([A-Z_]+(\([^)]*\))?)%`)

// render substitutes sample values for every operator of format, failing
// on an operator without one.
func render(t *testing.T, format string) string {
	t.Helper()
	return operatorRE.ReplaceAllStringFunc(format, func(op string) string {
		v, ok := sampleOperators[strings.Trim(op, "%")]
		if !ok {
			t.Errorf("format uses %s, which has no sample value (is it an Envoy command operator?)", op)
		}
		return v
	})
}

func TestAccessLogs(t *testing.T) {
	b := NewBuilder()
	m, err := b.Mesh(withPolicies(t, accessLogPolicy))
	if err != nil {
		t.Fatal(err)
	}
	s := snapshotOf(t, b, m, "web-1", true)
	checkSnapshot(t, s)

	// Outbound, to api: the default JSON line, every documented field.
	out := listenerHCM(t, s, "outbound:127.1.0.2:8080").GetAccessLog()
	if len(out) != 1 || out[0].GetName() != "envoy.access_loggers.file" {
		t.Fatalf("outbound access logs %v", out)
	}
	f := &filelogv3.FileAccessLog{}
	if err := out[0].GetTypedConfig().UnmarshalTo(f); err != nil {
		t.Fatal(err)
	}
	line := map[string]string{}
	for k, v := range f.GetLogFormat().GetJsonFormat().AsMap() {
		line[k] = render(t, v.(string))
	}
	want := map[string]string{
		"source_spiffe_id": "spiffe://default.mesh.local/workload/web", "destination_spiffe_id": "spiffe://default.mesh.local/workload/api",
		"source_service": "web", "destination_service": "api", "mesh": "default", "direction": "OUTBOUND",
		"status": "200", "duration_ms": "12", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "method": "GET", "path": "/orders",
		"bytes_sent": "342", "upstream_host": "10.0.1.20:15000", "response_flags": "-", "time": "2026-12-05T10:00:00.000Z",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("default line %s = %q, want %q", k, line[k], v)
		}
	}
	if len(line) != len(DefaultAccessLogFields) {
		t.Errorf("default line has %d fields, want %d", len(line), len(DefaultAccessLogFields))
	}
	if _, err := json.Marshal(line); err != nil {
		t.Fatal(err)
	}

	// Inbound: the plain line with Kuma's placeholders, and OpenTelemetry
	// to the collector, whose cluster every dataplane gets.
	in := listenerHCM(t, s, "inbound:10.0.1.10:15000").GetAccessLog()
	if len(in) != 2 {
		t.Fatalf("inbound access logs %v", in)
	}
	plain := &filelogv3.FileAccessLog{}
	if err := in[0].GetTypedConfig().UnmarshalTo(plain); err != nil {
		t.Fatal(err)
	}
	if got := render(t, plain.GetLogFormat().GetTextFormatSource().GetInlineString()); got != "default spiffe://default.mesh.local/workload/web -> web 200\n" {
		t.Errorf("plain inbound line %q", got)
	}
	otel := &otellogv3.OpenTelemetryAccessLogConfig{}
	if err := in[1].GetTypedConfig().UnmarshalTo(otel); err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the generator writes common_config (see otel)
	if otel.GetCommonConfig().GetGrpcService().GetEnvoyGrpc().GetClusterName() != "otel:otel-collector:4317" ||
		otel.GetBody().GetStringValue() != "default %REQ(:PATH)%" || otel.GetAttributes().GetValues()[0].GetValue().GetStringValue() != "INBOUND" {
		t.Errorf("OpenTelemetry logger %v", otel)
	}
	if m.NodeCluster(&Node{Reachable: map[string]bool{}}, "otel:otel-collector:4317") == nil {
		t.Errorf("a dataplane reaching no service must still get the collector's cluster")
	}

	// TCP: redis's VIP listener logs connections, without HTTP fields.
	l := unpack(t, s, resourcev3.ListenerType, "outbound:127.1.0.3:8080", &listenerv3.Listener{})
	tp := &tcpproxyv3.TcpProxy{}
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(tp); err != nil {
		t.Fatal(err)
	}
	tf := &filelogv3.FileAccessLog{}
	if len(tp.GetAccessLog()) != 1 || tp.GetAccessLog()[0].GetTypedConfig().UnmarshalTo(tf) != nil {
		t.Fatalf("redis tcp_proxy access log %v", tp.GetAccessLog())
	}
	fields := tf.GetLogFormat().GetJsonFormat().AsMap()
	if _, ok := fields["method"]; ok || fields["destination_service"] != "redis" {
		t.Errorf("TCP line %v: no HTTP fields, destination redis", fields)
	}
}
