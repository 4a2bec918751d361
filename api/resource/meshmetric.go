package resource

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Metric backend types, profiles and match types (Kuma's).
const (
	MetricPrometheus    = "Prometheus"
	MetricOpenTelemetry = "OpenTelemetry"

	MetricProfileAll   = "All"
	MetricProfileNone  = "None"
	MetricProfileBasic = "Basic"

	MetricMatchPrefix   = "Prefix"
	MetricMatchRegex    = "Regex"
	MetricMatchExact    = "Exact"
	MetricMatchContains = "Contains"

	// MetricTLSDisabled is the only Prometheus TLS mode ecsmesh serves.
	MetricTLSDisabled = "Disabled"
)

// Kuma's defaults for the Prometheus endpoint and the application path.
const (
	DefaultMetricsPort = 5670
	DefaultMetricsPath = "/metrics"
)

// MeshMetric makes the selected Dataplanes' agents serve one Prometheus
// endpoint merging Envoy's stats, the agent's own metrics and the
// applications' (Kuma's schema).
type MeshMetric struct {
	Meta
	Spec MeshMetricSpec `json:"spec"`
}

// MeshMetricSpec is the body of a MeshMetric: one configuration for the
// selected Dataplanes.
type MeshMetricSpec struct {
	// TargetRef selects the Dataplanes; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// Default is the configuration.
	Default MeshMetricConf `json:"default"`
}

// MeshMetricConf is what to scrape and how to expose it. Policies merge
// field by field; lists (applications, backends) replace each other.
type MeshMetricConf struct {
	// Sidecar filters Envoy's metrics.
	Sidecar *MetricSidecar `json:"sidecar,omitempty"`
	// Applications are the task's own Prometheus endpoints, merged into
	// the sidecar's.
	Applications []MetricApplication `json:"applications,omitzero"`
	// Backends says how metrics leave the sidecar; an empty list turns the
	// endpoint off.
	Backends []MetricBackend `json:"backends,omitzero"`
}

// MetricSidecar filters Envoy's metrics.
type MetricSidecar struct {
	_ unsupported `refused:"regex" why:"removed from Kuma's MeshMetric; use profiles.include with type Regex"`
	// IncludeUnused also publishes stats Envoy never updated.
	IncludeUnused *bool `json:"includeUnused,omitempty"`
	// Profiles select which of Envoy's metrics are published.
	Profiles *MetricProfiles `json:"profiles,omitempty"`
}

// MetricProfiles start from profiles, drop exclude, and add include back
// (include wins).
type MetricProfiles struct {
	AppendProfiles []MetricProfile `json:"appendProfiles,omitzero"`
	Exclude        []MetricMatch   `json:"exclude,omitzero"`
	Include        []MetricMatch   `json:"include,omitzero"`
}

// MetricProfile names a predefined set: All or None.
type MetricProfile struct {
	Name string `json:"name"`
}

// MetricMatch matches metric names.
type MetricMatch struct {
	// Type is Prefix, Regex, Exact or Contains.
	Type  string `json:"type"`
	Match string `json:"match"`
}

// MetricApplication is a Prometheus endpoint of the task's app.
type MetricApplication struct {
	// Name is for logs and errors.
	Name string `json:"name,omitempty"`
	// Path defaults to /metrics.
	Path string `json:"path,omitempty"`
	// Port is the app's metrics port. Required.
	Port int `json:"port"`
	// Address is an IP address, 127.0.0.1 by default.
	Address string `json:"address,omitempty"`
}

// MetricBackend is where metrics go.
type MetricBackend struct {
	// Type is Prometheus (OpenTelemetry is refused for now).
	Type          string                 `json:"type"`
	Prometheus    *PrometheusBackend     `json:"prometheus,omitempty"`
	OpenTelemetry *OTelMetricsBackendRef `json:"openTelemetry,omitempty"`
}

// PrometheusBackend is the endpoint the agent serves for Prometheus.
type PrometheusBackend struct {
	// Port defaults to 5670.
	Port int `json:"port,omitempty"`
	// Path defaults to /metrics.
	Path string `json:"path,omitempty"`
	// ClientID names the Prometheus that scrapes it (Kuma's MADS); kept
	// for compatibility, ecsmesh serves every client the same.
	ClientID string      `json:"clientId,omitempty"`
	TLS      *MetricsTLS `json:"tls,omitempty"`
}

// MetricsTLS is the endpoint's TLS; only Disabled is served.
type MetricsTLS struct {
	Mode string `json:"mode"`
}

// OTelMetricsBackendRef is Kuma's OpenTelemetry push backend, decoded so
// that it is refused with a clear message.
type OTelMetricsBackendRef struct {
	Endpoint        string           `json:"endpoint,omitempty"`
	RefreshInterval string           `json:"refreshInterval,omitempty"`
	BackendRef      *PolicyTargetRef `json:"backendRef,omitempty"`
}

// TopTargetRef implements Policy.
func (p *MeshMetric) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy: the default is an entry for every destination
// and one for every caller, so that it merges like the other kinds.
func (p *MeshMetric) Entries() (to, from []PolicyEntry) {
	e := PolicyEntry{Field: "default", TargetRef: PolicyTargetRef{Kind: TargetMesh}, Default: p.Spec.Default}
	return []PolicyEntry{e}, []PolicyEntry{e}
}

// metricPathRE is an absolute URL path without query, fragment or spaces.
var metricPathRE = regexp.MustCompile(`^/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]{0,255}$`)

// Validate implements Object.
func (p *MeshMetric) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	dp := validation.Root().Field("spec").Field("default")
	c := p.Spec.Default
	if c.Sidecar == nil && c.Applications == nil && c.Backends == nil {
		verr.Add(dp, "must set sidecar, applications or backends")
	}
	if s := c.Sidecar; s != nil && s.Profiles != nil {
		pp := dp.Field("sidecar").Field("profiles")
		for i, pr := range s.Profiles.AppendProfiles {
			switch pr.Name {
			case MetricProfileAll, MetricProfileNone:
			case MetricProfileBasic:
				verr.Add(pp.Field("appendProfiles").Index(i).Field("name"), "Basic is not supported by ecsmesh yet: use All with exclude/include, or None with include")
			default:
				verr.Add(pp.Field("appendProfiles").Index(i).Field("name"), fmt.Sprintf("must be All or None, got %q", pr.Name))
			}
		}
		validateMetricMatches(pp.Field("exclude"), s.Profiles.Exclude, verr)
		validateMetricMatches(pp.Field("include"), s.Profiles.Include, verr)
	}
	seen := map[string]int{}
	for i, a := range c.Applications {
		ap := dp.Field("applications").Index(i)
		if a.Port < 1 || a.Port > 65535 {
			verr.Add(ap.Field("port"), fmt.Sprintf("must be a port from 1 to 65535, got %d", a.Port))
		}
		if a.Path != "" && !metricPathRE.MatchString(a.Path) {
			verr.Add(ap.Field("path"), fmt.Sprintf("must be an absolute URL path without query, got %q", a.Path))
		}
		if a.Address != "" {
			if _, err := netip.ParseAddr(a.Address); err != nil || strings.Contains(a.Address, "%") {
				verr.Add(ap.Field("address"), fmt.Sprintf("must be an IP address (the app's, in the task), got %q", a.Address))
			}
		}
		key := fmt.Sprintf("%s:%d%s", a.Address, a.Port, a.Path)
		if prev, dup := seen[key]; dup {
			verr.Add(ap, fmt.Sprintf("duplicates applications[%d]", prev))
		}
		seen[key] = i
	}
	prom := 0
	for i, b := range c.Backends {
		bp := dp.Field("backends").Index(i)
		switch b.Type {
		case MetricPrometheus:
			prom++
			if prom == 2 {
				verr.Add(bp, "only one Prometheus backend is supported: the agent serves one endpoint")
			}
			if b.OpenTelemetry != nil {
				verr.Add(bp.Field("openTelemetry"), "must not be set with type Prometheus")
			}
			if b.Prometheus == nil {
				continue
			}
			pp := bp.Field("prometheus")
			if b.Prometheus.Port != 0 && (b.Prometheus.Port < 1 || b.Prometheus.Port > 65535) {
				verr.Add(pp.Field("port"), fmt.Sprintf("must be a port from 1 to 65535, got %d", b.Prometheus.Port))
			}
			if b.Prometheus.Path != "" && !metricPathRE.MatchString(b.Prometheus.Path) {
				verr.Add(pp.Field("path"), fmt.Sprintf("must be an absolute URL path without query, got %q", b.Prometheus.Path))
			}
			if t := b.Prometheus.TLS; t != nil && t.Mode != MetricTLSDisabled {
				verr.Add(pp.Field("tls").Field("mode"), fmt.Sprintf("only Disabled is supported by ecsmesh yet, got %q: scrape inside the VPC", t.Mode))
			}
		case MetricOpenTelemetry:
			verr.Add(bp.Field("type"), "OpenTelemetry is not supported by ecsmesh yet: use a Prometheus backend and let the CloudWatch agent or an OpenTelemetry collector scrape it")
		default:
			verr.Add(bp.Field("type"), fmt.Sprintf("must be Prometheus or OpenTelemetry, got %q", b.Type))
		}
	}
	return verr
}

func validateMetricMatches(p validation.Path, ms []MetricMatch, verr *validation.Error) {
	for i, m := range ms {
		mp := p.Index(i)
		if m.Match == "" {
			verr.Add(mp.Field("match"), "must not be empty")
		}
		switch m.Type {
		case MetricMatchPrefix, MetricMatchExact, MetricMatchContains:
		case MetricMatchRegex:
			if _, err := regexp.Compile(m.Match); err != nil {
				verr.Add(mp.Field("match"), "must be a regular expression (RE2): "+err.Error())
			}
		default:
			verr.Add(mp.Field("type"), fmt.Sprintf("must be Prefix, Regex, Exact or Contains, got %q", m.Type))
		}
	}
}
