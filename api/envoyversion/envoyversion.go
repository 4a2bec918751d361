// Package envoyversion names the one Envoy release ecsmesh builds and tests
// against, and the Envoy features the bootstrap and the generated xDS
// configuration rely on, with the first release that has each.
//
// The Go filter (.so) is built against github.com/envoyproxy/envoy at
// [Version] and only loads in an envoy-contrib binary of that release; the
// sidecar image is [Image]. A test in this package fails when go.mod, the
// sidecar Dockerfile, docs/envoy.md or the resources the control plane and
// the bootstrap generate disagree with this package.
package envoyversion

// Version is the Envoy release: the github.com/envoyproxy/envoy module
// version (without the "v") and the tag of the sidecar's base image.
const Version = Release + ".0"

// Release is the Envoy release line (major.minor) of [Version].
const Release = "1.39"

// Image is the sidecar's base image: Envoy with the contrib extensions,
// among them the Go HTTP filter.
const Image = "envoyproxy/envoy-contrib:v" + Version

// Feature is an Envoy capability the configuration uses.
type Feature struct {
	// Name says what the feature is, as docs/envoy.md lists it.
	Name string
	// Since is the first Envoy release (major.minor) that has it.
	Since string
	// Markers are type URLs or JSON field names (protojson, camelCase)
	// that show the feature in a generated resource or the bootstrap.
	Markers []string
}

// Features lists every Envoy feature the bootstrap (api/envoybootstrap) and
// the generated xDS resources need, and the host the .wasm needs.
var Features = []Feature{
	{Name: "xDS v3 API over one ADS gRPC stream", Since: "1.13", Markers: []string{"ads", "adsConfig", "resourceApiVersion"}},
	{Name: "Listener, route, cluster and endpoint resources (LDS, RDS, CDS, EDS)", Since: "1.13", Markers: []string{
		"type.googleapis.com/envoy.config.listener.v3.Listener",
		"type.googleapis.com/envoy.config.cluster.v3.Cluster",
		"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
		"type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap"}},
	{Name: "HTTP connection manager with the router filter", Since: "1.13", Markers: []string{
		"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
	{Name: "Route to the cluster a request header names (cluster_header)", Since: "1.13", Markers: []string{"clusterHeader"}},
	{Name: "TCP proxy", Since: "1.13", Markers: []string{"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"}},
	{Name: "Network RBAC filter (principals by mTLS identity)", Since: "1.13", Markers: []string{
		"type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"}},
	{Name: "TLS transport sockets, SDS secrets over ADS, combined validation context", Since: "1.13", Markers: []string{
		"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
		"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
		"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
		"sdsConfig", "combinedValidationContext"}},
	{Name: "Upstream HTTP protocol options as a typed extension (HTTP/2 to the control plane and between sidecars)", Since: "1.17", Markers: []string{
		"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"}},
	{Name: "Extension config discovery (ECDS) for the HTTP filter", Since: "1.17", Markers: []string{
		"configDiscovery", "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"}},
	{Name: "Wasm HTTP filter (proxy-wasm ABI 0.2.1, V8)", Since: "1.17", Markers: []string{
		"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"}},
	{Name: "Typed subject-alternative-name matchers (match_typed_subject_alt_names)", Since: "1.22", Markers: []string{"matchTypedSubjectAltNames"}},
	// No marker: a property of the .wasm, not of the configuration.
	{Name: "Host imports a Go (wasip1) proxy-wasm guest needs (proxy-wasm-go-sdk)", Since: "1.33"},
	{Name: "Wasm failure_policy FAIL_CLOSED", Since: "1.34", Markers: []string{"failurePolicy"}},
	{Name: "Go HTTP filter (contrib, envoy.filters.http.golang): the .so must be built against the same release", Since: Release, Markers: []string{
		"type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.Config"}},
	{Name: "gRPC call credentials read from a file (envoy.grpc_credentials.file_based_metadata)", Since: "1.13", Markers: []string{
		"type.googleapis.com/envoy.config.grpc_credential.v3.FileBasedMetadataConfig"}},
	{Name: "Plain-text plugin configuration (google.protobuf.StringValue)", Since: "1.13", Markers: []string{
		"type.googleapis.com/google.protobuf.StringValue"}}, {Name: "HTTP fault filter (MeshFaultInjection)", Since: "1.13", Markers: []string{"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
	{Name: "Network local rate limit filter (MeshRateLimit on TCP)", Since: "1.15", Markers: []string{"type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"}},
	{Name: "HTTP local rate limit filter (MeshRateLimit on HTTP)", Since: "1.17", Markers: []string{"type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"}},
	{Name: "File access logger with a substitution format (MeshAccessLog File)", Since: "1.20", Markers: []string{"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "logFormat"}},
	{Name: "OpenTelemetry access logger (MeshAccessLog OpenTelemetry)", Since: "1.25", Markers: []string{"type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig"}},
	{Name: "Zipkin tracer as an HCM tracing provider (MeshTrace Zipkin)", Since: "1.16", Markers: []string{"type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"}},
	{Name: "Whole-segment path prefix matching (path_separated_prefix, MeshHTTPRoute PathPrefix)", Since: "1.24", Markers: []string{"pathSeparatedPrefix"}},
}

// MinVersion is the oldest Envoy (major.minor) that has every feature but
// the Go filter, i.e. the oldest Envoy the .wasm form could run on. Only
// [Version] is built and tested.
func MinVersion() string {
	min := "1.0"
	for _, f := range Features {
		if f.Since == Release {
			continue
		}
		if Less(min, f.Since) {
			min = f.Since
		}
	}
	return min
}

// Less reports whether release a (major.minor[.patch]) is older than b.
func Less(a, b string) bool {
	pa, pb := parts(a), parts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func parts(v string) [3]int {
	var p [3]int
	i := 0
	for _, c := range v {
		switch {
		case c == '.':
			i++
			if i == len(p) {
				return p
			}
		case c >= '0' && c <= '9':
			p[i] = p[i]*10 + int(c-'0')
		}
	}
	return p
}
