package resource

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Path match, query match and filter types of a MeshHTTPRoute.
const (
	PathExact             = "Exact"
	PathPrefix            = "PathPrefix"
	PathRegularExpression = "RegularExpression"

	FilterRequestHeaderModifier  = "RequestHeaderModifier"
	FilterResponseHeaderModifier = "ResponseHeaderModifier"
	FilterRequestRedirect        = "RequestRedirect"
	FilterURLRewrite             = "URLRewrite"
	FilterRequestMirror          = "RequestMirror"

	RewriteReplaceFullPath    = "ReplaceFullPath"
	RewriteReplacePrefixMatch = "ReplacePrefixMatch"
)

// MeshHTTPRoute routes HTTP requests to a destination by path, method,
// headers and query, with weighted backends (e.g. 90/10 between versions)
// and filters (Kuma's schema).
type MeshHTTPRoute struct {
	Meta
	Spec MeshHTTPRouteSpec `json:"spec"`
}

// MeshHTTPRouteSpec is the body of a MeshHTTPRoute.
type MeshHTTPRouteSpec struct {
	// TargetRef selects the calling Dataplanes; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// To lists the destinations routed and their rules.
	To []HTTPRouteTo `json:"to,omitempty"`
}

// HTTPRouteTo holds the rules for requests to one destination.
type HTTPRouteTo struct {
	_ unsupported `refused:"hostnames" why:"hostnames apply to gateways; ecsmesh runs sidecars only"`
	// TargetRef is the destination: a MeshService.
	TargetRef PolicyTargetRef `json:"targetRef"`
	// Rules route the requests; merged with other routes' rules that have
	// the same matches.
	Rules []HTTPRouteRule `json:"rules,omitzero"`
}

// HTTPRouteRule sends requests that match one of Matches as Default says.
type HTTPRouteRule struct {
	Matches []HTTPRouteMatch `json:"matches"`
	Default HTTPRouteConf    `json:"default"`
}

// HTTPRouteMatch matches a request; every part that is set must match.
type HTTPRouteMatch struct {
	Path   *PathMatch `json:"path,omitempty"`
	Method string     `json:"method,omitempty"`
	// QueryParams all must match.
	QueryParams []QueryParamMatch `json:"queryParams,omitzero"`
	// Headers all must match.
	Headers []HeaderMatch `json:"headers,omitzero"`
}

// PathMatch matches the request path: Exact, PathPrefix (whole segments)
// or RegularExpression (RE2).
type PathMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// QueryParamMatch matches a query parameter: Exact or RegularExpression.
type QueryParamMatch struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HTTPRouteConf is what a rule does. Absent fields keep what a less
// specific route with the same matches set; a list replaces.
type HTTPRouteConf struct {
	Filters     []HTTPRouteFilter `json:"filters,omitzero"`
	BackendRefs []BackendRef      `json:"backendRefs,omitzero"`
}

// HTTPRouteFilter changes requests or responses; the field named by Type
// is set.
type HTTPRouteFilter struct {
	Type                   string           `json:"type"`
	RequestHeaderModifier  *HeaderModifier  `json:"requestHeaderModifier,omitempty"`
	ResponseHeaderModifier *HeaderModifier  `json:"responseHeaderModifier,omitempty"`
	RequestRedirect        *RequestRedirect `json:"requestRedirect,omitempty"`
	URLRewrite             *URLRewrite      `json:"urlRewrite,omitempty"`
	RequestMirror          *RequestMirror   `json:"requestMirror,omitempty"`
}

// RequestRedirect answers with a redirect.
type RequestRedirect struct {
	// Scheme is http or https.
	Scheme   string       `json:"scheme,omitempty"`
	Hostname string       `json:"hostname,omitempty"`
	Path     *PathRewrite `json:"path,omitempty"`
	Port     *uint32      `json:"port,omitempty"`
	// StatusCode is 301, 302 (default), 303, 307 or 308.
	StatusCode int `json:"statusCode,omitempty"`
}

// URLRewrite rewrites the host and path before forwarding.
type URLRewrite struct {
	_        unsupported  `refused:"hostToBackendHostname" why:"hostToBackendHostname applies to gateways; ecsmesh runs sidecars only"`
	Hostname string       `json:"hostname,omitempty"`
	Path     *PathRewrite `json:"path,omitempty"`
}

// PathRewrite replaces the whole path or the matched prefix.
type PathRewrite struct {
	Type               string  `json:"type"`
	ReplaceFullPath    *string `json:"replaceFullPath,omitempty"`
	ReplacePrefixMatch *string `json:"replacePrefixMatch,omitempty"`
}

// RequestMirror copies a percentage of requests to another backend.
type RequestMirror struct {
	// Percentage mirrored (default 100).
	Percentage *Number `json:"percentage,omitempty"`
	// BackendRef receives the copies; its weight is not used.
	BackendRef BackendRef `json:"backendRef"`
}

var (
	httpMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
	// preciseHostnameRE is a lower-case DNS name (RFC 1123).
	preciseHostnameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// TopTargetRef implements Policy.
func (p *MeshHTTPRoute) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy: each to entry's Default is its []HTTPRouteRule.
func (p *MeshHTTPRoute) Entries() (to, from []PolicyEntry) {
	for i, t := range p.Spec.To {
		to = append(to, PolicyEntry{Field: "to", Index: i, TargetRef: t.TargetRef, Default: t.Rules})
	}
	return to, nil
}

// Validate implements Object.
func (p *MeshHTTPRoute) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	if len(p.Spec.To) == 0 {
		verr.Add(sp.Field("to"), "must have at least one entry")
	}
	for i, to := range p.Spec.To {
		tp := sp.Field("to").Index(i)
		validateTargetRef(tp.Field("targetRef"), to.TargetRef, []string{TargetMeshService}, p.Mesh, verr)
		if len(to.Rules) == 0 {
			verr.Add(tp.Field("rules"), "must have at least one rule")
		}
		for j := range to.Rules {
			validateHTTPRouteRule(tp.Field("rules").Index(j), &to.Rules[j], verr)
		}
	}
	return verr
}

func validateHTTPRouteRule(p validation.Path, r *HTTPRouteRule, verr *validation.Error) {
	if len(r.Matches) == 0 {
		verr.Add(p.Field("matches"), "must have at least one match")
	}
	for i := range r.Matches {
		validateHTTPRouteMatch(p.Field("matches").Index(i), &r.Matches[i], verr)
	}
	dp := p.Field("default")
	for i := range r.Default.Filters {
		validateHTTPRouteFilter(dp.Field("filters").Index(i), &r.Default.Filters[i], r.Matches, verr)
	}
	validateBackendRefs(dp.Field("backendRefs"), r.Default.BackendRefs, verr)
}

func validateHTTPRouteMatch(p validation.Path, m *HTTPRouteMatch, verr *validation.Error) {
	if m.Path != nil {
		vp := p.Field("path").Field("value")
		switch m.Path.Type {
		case PathExact:
			validateAbsolutePath(vp, m.Path.Value, verr)
		case PathPrefix:
			validateAbsolutePath(vp, m.Path.Value, verr)
			if m.Path.Value != "/" && strings.HasSuffix(m.Path.Value, "/") {
				verr.Add(vp, "must not end with '/': a prefix matches whole path segments")
			}
		case PathRegularExpression:
			validateRegex(vp, m.Path.Value, verr)
		case "Prefix":
			verr.Add(p.Field("path").Field("type"), "Prefix was renamed PathPrefix in Kuma 2.3; use PathPrefix")
		default:
			verr.Add(p.Field("path").Field("type"), fmt.Sprintf("must be Exact, PathPrefix or RegularExpression, got %q", m.Path.Type))
		}
	}
	if m.Method != "" && !slices.Contains(httpMethods, m.Method) {
		verr.Add(p.Field("method"), fmt.Sprintf("must be one of %s, got %q", strings.Join(httpMethods, ", "), m.Method))
	}
	names := map[string]bool{}
	for i, q := range m.QueryParams {
		qp := p.Field("queryParams").Index(i)
		switch {
		case q.Name == "":
			verr.Add(qp.Field("name"), "must be set")
		case names[q.Name]:
			verr.Add(qp.Field("name"), fmt.Sprintf("%q is matched twice", q.Name))
		}
		names[q.Name] = true
		switch q.Type {
		case PathExact:
		case PathRegularExpression:
			validateRegex(qp.Field("value"), q.Value, verr)
		default:
			verr.Add(qp.Field("type"), fmt.Sprintf("must be Exact or RegularExpression, got %q", q.Type))
		}
	}
	validateHeaderMatches(p.Field("headers"), m.Headers, verr)
}

func validateAbsolutePath(p validation.Path, v string, verr *validation.Error) {
	if !strings.HasPrefix(v, "/") {
		verr.Add(p, fmt.Sprintf("must be an absolute path starting with '/', got %q", v))
	}
}

// filterFields names the field each filter type sets.
var filterFields = map[string]string{
	FilterRequestHeaderModifier:  "requestHeaderModifier",
	FilterResponseHeaderModifier: "responseHeaderModifier",
	FilterRequestRedirect:        "requestRedirect",
	FilterURLRewrite:             "urlRewrite",
	FilterRequestMirror:          "requestMirror",
}

func validateHTTPRouteFilter(p validation.Path, f *HTTPRouteFilter, matches []HTTPRouteMatch, verr *validation.Error) {
	want, ok := filterFields[f.Type]
	if !ok {
		verr.Add(p.Field("type"), fmt.Sprintf("must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror, got %q", f.Type))
		return
	}
	set := map[string]bool{
		"requestHeaderModifier":  f.RequestHeaderModifier != nil,
		"responseHeaderModifier": f.ResponseHeaderModifier != nil,
		"requestRedirect":        f.RequestRedirect != nil,
		"urlRewrite":             f.URLRewrite != nil,
		"requestMirror":          f.RequestMirror != nil,
	}
	if !set[want] {
		verr.Add(p.Field(want), "must be set with type "+f.Type)
		return
	}
	for _, other := range slices.Sorted(maps.Keys(set)) {
		if other != want && set[other] {
			verr.Add(p.Field(other), "must not be set with type "+f.Type)
		}
	}
	fp := p.Field(want)
	switch f.Type {
	case FilterRequestHeaderModifier:
		validateHeaderModifier(fp, f.RequestHeaderModifier, verr)
	case FilterResponseHeaderModifier:
		validateHeaderModifier(fp, f.ResponseHeaderModifier, verr)
	case FilterRequestRedirect:
		r := f.RequestRedirect
		if r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https" {
			verr.Add(fp.Field("scheme"), fmt.Sprintf("must be http or https, got %q", r.Scheme))
		}
		validatePreciseHostname(fp.Field("hostname"), r.Hostname, verr)
		validatePathRewrite(fp.Field("path"), r.Path, matches, verr)
		if r.Port != nil && (*r.Port < 1 || *r.Port > 65535) {
			verr.Add(fp.Field("port"), "must be in 1..65535")
		}
		switch r.StatusCode {
		case 0, 301, 302, 303, 307, 308:
		default:
			verr.Add(fp.Field("statusCode"), fmt.Sprintf("must be 301, 302, 303, 307 or 308, got %d", r.StatusCode))
		}
	case FilterURLRewrite:
		validatePreciseHostname(fp.Field("hostname"), f.URLRewrite.Hostname, verr)
		validatePathRewrite(fp.Field("path"), f.URLRewrite.Path, matches, verr)
	case FilterRequestMirror:
		validateNumberPercent(fp.Field("percentage"), f.RequestMirror.Percentage, verr)
		validateBackendRef(fp.Field("backendRef"), f.RequestMirror.BackendRef, verr)
		if f.RequestMirror.BackendRef.Weight != nil {
			verr.Add(fp.Field("backendRef").Field("weight"), "must not be set: a mirror receives copies, not a share")
		}
	}
}

func validatePreciseHostname(p validation.Path, h string, verr *validation.Error) {
	if h == "" {
		return
	}
	if _, err := netip.ParseAddr(h); err == nil {
		verr.Add(p, "must be a host name, not an IP address")
		return
	}
	if len(h) > 253 || !preciseHostnameRE.MatchString(h) {
		verr.Add(p, fmt.Sprintf("must be a lower-case DNS name, got %q", h))
	}
}

func validatePathRewrite(p validation.Path, r *PathRewrite, matches []HTTPRouteMatch, verr *validation.Error) {
	if r == nil {
		return
	}
	switch r.Type {
	case RewriteReplaceFullPath:
		if r.ReplaceFullPath == nil {
			verr.Add(p.Field("replaceFullPath"), "must be set with type ReplaceFullPath")
		} else {
			validateAbsolutePath(p.Field("replaceFullPath"), *r.ReplaceFullPath, verr)
		}
		if r.ReplacePrefixMatch != nil {
			verr.Add(p.Field("replacePrefixMatch"), "must not be set with type ReplaceFullPath")
		}
	case RewriteReplacePrefixMatch:
		if r.ReplacePrefixMatch == nil {
			verr.Add(p.Field("replacePrefixMatch"), "must be set with type ReplacePrefixMatch")
		} else {
			validateAbsolutePath(p.Field("replacePrefixMatch"), *r.ReplacePrefixMatch, verr)
		}
		if r.ReplaceFullPath != nil {
			verr.Add(p.Field("replaceFullPath"), "must not be set with type ReplacePrefixMatch")
		}
		for _, m := range matches {
			if m.Path == nil || m.Path.Type != PathPrefix {
				verr.Add(p.Field("replacePrefixMatch"), "can only be used when every match of the rule matches a PathPrefix")
				break
			}
		}
	default:
		verr.Add(p.Field("type"), fmt.Sprintf("must be ReplaceFullPath or ReplacePrefixMatch, got %q", r.Type))
	}
}
