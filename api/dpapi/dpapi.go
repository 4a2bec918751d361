// Package dpapi is the wire format of the control plane's sidecar API
// (POST /bootstrap, POST /v1/health-sync), shared by the control plane
// (dpserver) and the sidecar agent, so that the agent depends on these
// types and nothing else of the control plane.
package dpapi

import (
	"time"
)

// Body caps.
const (
	// MaxBootstrapBody caps POST /bootstrap (1 MiB, as every API body).
	MaxBootstrapBody = 1 << 20
	// MaxHealthSyncBody caps POST /v1/health-sync.
	MaxHealthSyncBody = 64 << 10
)

// Version describes the agent and Envoy (Kuma's shape).
type Version struct {
	// EcsmeshDP is the agent's version.
	EcsmeshDP VersionInfo `json:"ecsmeshDp"`
	// Envoy is the proxy's version.
	Envoy VersionInfo `json:"envoy"`
}

// VersionInfo is one component's version.
type VersionInfo struct {
	Version string `json:"version,omitempty"`
	Build   string `json:"build,omitempty"`
}

// BootstrapRequest is the body of POST /bootstrap. The login fields are
// those of POST /v1/auth/aws-iam/login (see LoginRequest).
type BootstrapRequest struct {
	// Mesh and Name identify the Dataplane; when empty they are taken from
	// DataplaneResource.
	Mesh string `json:"mesh"`
	Name string `json:"name"`
	// ProxyType is dataplane (default), ingress or egress.
	ProxyType string `json:"proxyType,omitempty"`
	// DataplaneResource is the rendered Dataplane, YAML or JSON text.
	DataplaneResource string `json:"dataplaneResource"`
	// LoginToken is the signed, unsent sts:GetCallerIdentity (aws-iam).
	LoginToken string `json:"loginToken,omitempty"`
	// Version of the agent and Envoy.
	Version Version `json:"version"`
	// Host is the CP's host name as the agent reaches it; Envoy dials the
	// xDS port on it. Default: the Host of this request.
	Host string `json:"host,omitempty"`
	// CACertPath is where the agent keeps the CP's CA (Envoy verifies the
	// xDS server with it); empty means the system roots.
	CACertPath string `json:"caCertPath,omitempty"`
	// TokenPath is the file the agent keeps the token in (reloadable
	// tokens).
	TokenPath string `json:"tokenPath,omitempty"`
	// AdminPort is Envoy's admin port on 127.0.0.1 unless the Dataplane's
	// networking.admin.port is set.
	AdminPort int `json:"adminPort,omitempty"`
	// BindOutbounds asks for listeners on every reachable service's VIP.
	BindOutbounds bool `json:"bindOutbounds,omitempty"`
	// TaskARN and AvailabilityZone come from the task metadata.
	TaskARN          string `json:"taskArn,omitempty"`
	AvailabilityZone string `json:"availabilityZone,omitempty"`
}

// BootstrapResponse answers a successful POST /bootstrap.
type BootstrapResponse struct {
	// Bootstrap is Envoy's v3 bootstrap (protojson), already validated.
	Bootstrap any `json:"bootstrap"`
	// Token is the dataplane token (a JWT) and ExpiresAt its expiry.
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	// ReloadableTokens says Envoy reads the token from TokenPath.
	ReloadableTokens bool `json:"reloadableTokens"`
	// Mesh and Name are the Dataplane's.
	Mesh string `json:"mesh"`
	Name string `json:"name"`
	// SPIFFEID is the dataplane's identity, when known.
	SPIFFEID string `json:"spiffeId,omitempty"`
	// XDSAddress is host:port of the ADS server in the bootstrap.
	XDSAddress string `json:"xdsAddress"`
}

// HealthSyncRequest is the body of POST /v1/health-sync, authenticated
// with the dataplane token (Authorization: Bearer).
type HealthSyncRequest struct {
	Mesh string `json:"mesh"`
	Name string `json:"name"`
	// Ready applies to every inbound not listed in Inbounds.
	Ready bool `json:"ready"`
	// Inbounds override Ready per inbound port.
	Inbounds []InboundHealth `json:"inbounds,omitempty"`
	// Draining marks every inbound not ready whatever else is said
	// (SIGTERM).
	Draining bool `json:"draining,omitempty"`
}

// InboundHealth is one inbound's readiness.
type InboundHealth struct {
	Port  int  `json:"port"`
	Ready bool `json:"ready"`
}

// HealthSyncResponse lists the stored states.
type HealthSyncResponse struct {
	Inbounds []InboundState `json:"inbounds"`
	// Changed reports whether this sync changed the stored Dataplane.
	Changed bool `json:"changed"`
	// Metrics is the metrics endpoint the agent serves (the MeshMetric
	// policies that select the Dataplane, merged); nil serves none.
	Metrics *Metrics `json:"metrics,omitempty"`
}

// Metrics configures the agent's Prometheus endpoint: where it listens,
// which of Envoy's metrics it publishes, the applications it scrapes and
// the labels every series gets.
type Metrics struct {
	// Port and Path are where the endpoint listens (0.0.0.0:Port, Path).
	Port int    `json:"port"`
	Path string `json:"path"`
	// IncludeUnused also publishes stats Envoy never updated.
	IncludeUnused bool `json:"includeUnused,omitempty"`
	// AllEnvoy publishes every Envoy metric family (profile All), else
	// none (profile None) but those Include matches; Exclude removes
	// families, Include adds them back (Include wins).
	AllEnvoy bool          `json:"allEnvoy"`
	Exclude  []MetricMatch `json:"exclude,omitempty"`
	Include  []MetricMatch `json:"include,omitempty"`
	// Applications are the task's Prometheus endpoints.
	Applications []MetricsApplication `json:"applications,omitempty"`
	// Labels are added to every series: mesh, service, workload.
	Labels MetricsLabels `json:"labels"`
}

// MetricMatch matches metric family names: Type is Prefix, Exact,
// Contains or Regex (RE2).
type MetricMatch struct {
	Type  string `json:"type"`
	Match string `json:"match"`
}

// MetricsApplication is one application endpoint:
// http://Address:Port/Path.
type MetricsApplication struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Path    string `json:"path"`
}

// MetricsLabels are the mesh labels every series carries.
type MetricsLabels struct {
	Mesh     string `json:"mesh"`
	Service  string `json:"service"`
	Workload string `json:"workload"`
}

// InboundState is one inbound's stored state.
type InboundState struct {
	Port    int    `json:"port"`
	Service string `json:"service"`
	State   string `json:"state"`
}

// Where the sidecar image installs the filter: the control plane's
// generated config points Envoy there unless the CP is configured
// otherwise (ECSMESH_FILTER_WASM_PATH, ECSMESH_FILTER_GO_PATH).
const (
	FilterWasmPath = "/etc/ecsmesh/ecsmesh-filter.wasm"
	FilterGoPath   = "/etc/ecsmesh/ecsmesh-filter.so"
)

// Variables the agent sets in Envoy's environment: the Dataplane's first
// service and its address. Generated access log formats read them
// (%ENVIRONMENT(ECSMESH_SERVICE)%) where the listener is shared by every
// caller.
const (
	EnvoyEnvService = "ECSMESH_SERVICE"
	EnvoyEnvAddress = "ECSMESH_ADDRESS"
)
