package resource

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Trace backend types (Kuma's).
const (
	TraceZipkin        = "Zipkin"
	TraceDatadog       = "Datadog"
	TraceOpenTelemetry = "OpenTelemetry"
)

// MeshTrace sends spans of the HTTP traffic of the selected Dataplanes to
// one tracing backend (Kuma's schema).
type MeshTrace struct {
	Meta
	Spec MeshTraceSpec `json:"spec"`
}

// MeshTraceSpec is the body of a MeshTrace: one configuration for the
// selected Dataplanes, inbound and outbound.
type MeshTraceSpec struct {
	// TargetRef selects the Dataplanes; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// Default is the configuration.
	Default MeshTraceConf `json:"default"`
}

// MeshTraceConf is where spans go, how many, and with which tags.
type MeshTraceConf struct {
	// Backends holds at most one backend (Kuma's rule); an empty list
	// turns tracing off.
	Backends []TraceBackend `json:"backends,omitzero"`
	Sampling *TraceSampling `json:"sampling,omitempty"`
	Tags     []TraceTag     `json:"tags,omitzero"`
}

// TraceBackend is a tracing collector.
type TraceBackend struct {
	// Type is Zipkin, Datadog or OpenTelemetry.
	Type          string            `json:"type"`
	Zipkin        *ZipkinBackend    `json:"zipkin,omitempty"`
	Datadog       *DatadogBackend   `json:"datadog,omitempty"`
	OpenTelemetry *OTelTraceBackend `json:"openTelemetry,omitempty"`
}

// ZipkinBackend is a Zipkin (or Jaeger) collector.
type ZipkinBackend struct {
	// URL is the collector's span endpoint
	// (http://jaeger-collector:9411/api/v2/spans).
	URL string `json:"url"`
	// TraceID128bit uses 128-bit trace IDs.
	TraceID128bit *bool `json:"traceId128bit,omitempty"`
	// APIVersion is httpJson (default) or httpProto.
	APIVersion string `json:"apiVersion,omitempty"`
	// SharedSpanContext makes client and server spans share an ID
	// (default true).
	SharedSpanContext *bool `json:"sharedSpanContext,omitempty"`
}

// DatadogBackend is a Datadog agent.
type DatadogBackend struct {
	// URL is the agent's address (http://127.0.0.1:8126).
	URL string `json:"url"`
	// SplitService names spans <service>_INBOUND and <service>_OUTBOUND.
	SplitService *bool `json:"splitService,omitempty"`
}

// OTelTraceBackend is an OpenTelemetry collector (OTLP/gRPC).
type OTelTraceBackend struct {
	// Endpoint is the collector's host:port.
	Endpoint string `json:"endpoint"`
}

// TraceSampling are Envoy's sampling percentages (0-100).
type TraceSampling struct {
	Overall *Number `json:"overall,omitempty"`
	Client  *Number `json:"client,omitempty"`
	Random  *Number `json:"random,omitempty"`
}

// TraceTag is a span tag: a literal or a request header's value.
type TraceTag struct {
	Name    string          `json:"name"`
	Literal string          `json:"literal,omitempty"`
	Header  *TraceTagHeader `json:"header,omitempty"`
}

// TraceTagHeader takes a tag from a request header.
type TraceTagHeader struct {
	Name    string `json:"name"`
	Default string `json:"default,omitempty"`
}

// TopTargetRef implements Policy.
func (p *MeshTrace) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy: the default is an entry for every destination
// and one for every caller, so that it merges like the other kinds.
func (p *MeshTrace) Entries() (to, from []PolicyEntry) {
	e := PolicyEntry{Field: "default", TargetRef: PolicyTargetRef{Kind: TargetMesh}, Default: p.Spec.Default}
	return []PolicyEntry{e}, []PolicyEntry{e}
}

// Validate implements Object.
func (p *MeshTrace) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	dp := validation.Root().Field("spec").Field("default")
	c := p.Spec.Default
	if c.Backends == nil && c.Sampling == nil && c.Tags == nil {
		verr.Add(dp, "must set backends, sampling or tags")
	}
	if len(c.Backends) > 1 {
		verr.Add(dp.Field("backends"), "must hold at most one backend")
	}
	for i, b := range c.Backends {
		validateTraceBackend(dp.Field("backends").Index(i), b, verr)
	}
	if s := c.Sampling; s != nil {
		sp := dp.Field("sampling")
		validateNumberPercent(sp.Field("overall"), s.Overall, verr)
		validateNumberPercent(sp.Field("client"), s.Client, verr)
		validateNumberPercent(sp.Field("random"), s.Random, verr)
	}
	seen := map[string]int{}
	for i, t := range c.Tags {
		tp := dp.Field("tags").Index(i)
		if t.Name == "" {
			verr.Add(tp.Field("name"), "must not be empty")
		} else if prev, dup := seen[t.Name]; dup {
			verr.Add(tp.Field("name"), fmt.Sprintf("duplicates tags[%d]", prev))
		}
		seen[t.Name] = i
		switch {
		case (t.Literal == "") == (t.Header == nil):
			verr.Add(tp, "must set exactly one of literal or header")
		case t.Header != nil && !headerNameRE.MatchString(t.Header.Name):
			verr.Add(tp.Field("header").Field("name"), "must be a header name")
		}
	}
	return verr
}

func validateTraceBackend(p validation.Path, b TraceBackend, verr *validation.Error) {
	httpURL := func(fp validation.Path, s string) {
		u, err := url.Parse(s)
		switch {
		case err == nil && u.Scheme == "https":
			verr.Add(fp, fmt.Sprintf("https collectors are not supported yet: reach the collector over http:// inside the VPC (got %q)", s))
		case err != nil || u.Scheme != "http" || u.Host == "":
			verr.Add(fp, fmt.Sprintf("must be an http:// URL, got %q", s))
		}
	}
	switch b.Type {
	case TraceZipkin:
		if b.Zipkin == nil {
			verr.Add(p.Field("zipkin"), "must be set with type Zipkin")
			return
		}
		httpURL(p.Field("zipkin").Field("url"), b.Zipkin.URL)
		switch b.Zipkin.APIVersion {
		case "", "httpJson", "httpProto":
		default:
			verr.Add(p.Field("zipkin").Field("apiVersion"), fmt.Sprintf("must be httpJson or httpProto, got %q", b.Zipkin.APIVersion))
		}
	case TraceDatadog:
		if b.Datadog == nil {
			verr.Add(p.Field("datadog"), "must be set with type Datadog")
			return
		}
		httpURL(p.Field("datadog").Field("url"), b.Datadog.URL)
	case TraceOpenTelemetry:
		if b.OpenTelemetry == nil {
			verr.Add(p.Field("openTelemetry"), "must be set with type OpenTelemetry")
			return
		}
		if err := validateHostPort(b.OpenTelemetry.Endpoint); err != "" {
			verr.Add(p.Field("openTelemetry").Field("endpoint"), err)
		}
	default:
		verr.Add(p.Field("type"), fmt.Sprintf("must be Zipkin, Datadog or OpenTelemetry, got %q", b.Type))
	}
	if strings.Count(fmt.Sprint(b.Zipkin != nil, b.Datadog != nil, b.OpenTelemetry != nil), "true") > 1 {
		verr.Add(p, "must set only the field its type names")
	}
}
