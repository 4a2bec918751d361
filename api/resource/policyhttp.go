package resource

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Header match types (Kuma's; Envoy's header matchers).
const (
	HeaderMatchExact             = "Exact"
	HeaderMatchPresent           = "Present"
	HeaderMatchRegularExpression = "RegularExpression"
	HeaderMatchAbsent            = "Absent"
	HeaderMatchPrefix            = "Prefix"
)

// HeaderMatch matches a request or response header.
type HeaderMatch struct {
	// Type is Exact (default), Present, RegularExpression, Absent or Prefix.
	Type string `json:"type,omitempty"`
	// Name is the header name, matched case-insensitively.
	Name string `json:"name"`
	// Value is the value, prefix or RE2 expression (none for Present and
	// Absent).
	Value string `json:"value,omitempty"`
}

// HeaderKeyValue is one header to set or add.
type HeaderKeyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HeaderModifier sets, adds and removes headers (at most one action per
// header name).
type HeaderModifier struct {
	Set    []HeaderKeyValue `json:"set,omitzero"`
	Add    []HeaderKeyValue `json:"add,omitzero"`
	Remove []string         `json:"remove,omitzero"`
}

// HeaderAdditions sets and adds headers (health-check requests, rate-limit
// responses).
type HeaderAdditions struct {
	Set []HeaderKeyValue `json:"set,omitzero"`
	Add []HeaderKeyValue `json:"add,omitzero"`
}

// BackendRef is where a route sends traffic: a MeshService or a
// MeshServiceSubset (e.g. the tasks of backend with version: v2).
type BackendRef struct {
	_ unsupported `refused:"port" why:"port selects a port of a MeshService resource; ecsmesh names services by kuma.io/service, one port each"`
	_ unsupported `refused:"namespace" why:"Kubernetes namespaces do not exist on ECS; name the service by its kuma.io/service"`
	_ unsupported `refused:"labels" why:"ecsmesh has no MeshService resources to select by labels; name the service by its kuma.io/service"`
	_ unsupported `refused:"mesh" why:"cross-mesh references are reserved in Kuma and not implemented"`
	_ unsupported `refused:"sectionName" why:"ecsmesh services have no named sections (ports)"`
	// Kind is MeshService or MeshServiceSubset.
	Kind string `json:"kind"`
	// Name is the service's kuma.io/service.
	Name string `json:"name"`
	// Tags narrow a MeshServiceSubset (e.g. version: v2).
	Tags map[string]string `json:"tags,omitempty"`
	// Weight is the share of traffic relative to the other backends
	// (default 1).
	Weight *uint32 `json:"weight,omitempty"`
}

// EffectiveWeight returns Weight, 1 when unset.
func (b BackendRef) EffectiveWeight() uint32 {
	if b.Weight == nil {
		return 1
	}
	return *b.Weight
}

// headerNameRE is an RFC 7230 token, the characters of a header name.
var headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+\\-.^_`|~]{1,256}$")

func validateHeaderName(p validation.Path, name string, verr *validation.Error) {
	if !headerNameRE.MatchString(name) {
		verr.Add(p, fmt.Sprintf("must be an HTTP header name (1-256 token characters), got %q", name))
	}
}

func validateHeaderValue(p validation.Path, v string, verr *validation.Error) {
	if strings.ContainsAny(v, "\r\n\x00") {
		verr.Add(p, "must not contain CR, LF or NUL")
	}
}

// validateRegex checks an expression compiles with RE2 syntax (Go's regexp
// and Envoy both use RE2).
func validateRegex(p validation.Path, expr string, verr *validation.Error) {
	if expr == "" {
		verr.Add(p, "must be set to an RE2 regular expression")
		return
	}
	if _, err := regexp.Compile(expr); err != nil {
		verr.Add(p, "must be an RE2 regular expression: "+err.Error())
	}
}

func validateHeaderMatches(p validation.Path, ms []HeaderMatch, verr *validation.Error) {
	for i, m := range ms {
		mp := p.Index(i)
		validateHeaderName(mp.Field("name"), m.Name, verr)
		switch m.Type {
		case "", HeaderMatchExact, HeaderMatchPrefix:
			validateHeaderValue(mp.Field("value"), m.Value, verr)
		case HeaderMatchRegularExpression:
			validateRegex(mp.Field("value"), m.Value, verr)
		case HeaderMatchPresent, HeaderMatchAbsent:
			if m.Value != "" {
				verr.Add(mp.Field("value"), "must not be set with type "+m.Type)
			}
		default:
			verr.Add(mp.Field("type"), fmt.Sprintf("must be one of Exact, Present, RegularExpression, Absent, Prefix, got %q", m.Type))
		}
	}
}

// headerActions checks the names of set/add/remove: valid, and each name in
// one action only.
type headerActions struct {
	seen map[string]string
	verr *validation.Error
}

func (h *headerActions) name(p validation.Path, action, name string) {
	validateHeaderName(p, name, h.verr)
	key := strings.ToLower(name)
	if prev, dup := h.seen[key]; dup {
		h.verr.Add(p, fmt.Sprintf("header %q is already in %s: one action per header", name, prev))
		return
	}
	h.seen[key] = action
}

func (h *headerActions) values(p validation.Path, action string, kvs []HeaderKeyValue) {
	if len(kvs) > 16 {
		h.verr.Add(p, "must have at most 16 headers")
	}
	for i, kv := range kvs {
		h.name(p.Index(i).Field("name"), action, kv.Name)
		validateHeaderValue(p.Index(i).Field("value"), kv.Value, h.verr)
	}
}

func validateHeaderModifier(p validation.Path, m *HeaderModifier, verr *validation.Error) {
	if m.Set == nil && m.Add == nil && m.Remove == nil {
		verr.Add(p, "must have at least one of set, add or remove")
		return
	}
	h := &headerActions{seen: map[string]string{}, verr: verr}
	h.values(p.Field("set"), "set", m.Set)
	h.values(p.Field("add"), "add", m.Add)
	if len(m.Remove) > 16 {
		verr.Add(p.Field("remove"), "must have at most 16 headers")
	}
	for i, n := range m.Remove {
		h.name(p.Field("remove").Index(i), "remove", n)
	}
}

func validateHeaderAdditions(p validation.Path, m *HeaderAdditions, verr *validation.Error) {
	h := &headerActions{seen: map[string]string{}, verr: verr}
	h.values(p.Field("set"), "set", m.Set)
	h.values(p.Field("add"), "add", m.Add)
}

// validateBackendRefs checks a route's backends: MeshService or
// MeshServiceSubset, and at least one with a weight above zero.
func validateBackendRefs(p validation.Path, refs []BackendRef, verr *validation.Error) {
	var total uint64
	for i, b := range refs {
		validateBackendRef(p.Index(i), b, verr)
		total += uint64(b.EffectiveWeight())
	}
	if len(refs) > 0 && total == 0 {
		verr.Add(p, "at least one backend must have a weight above zero")
	}
}

func validateBackendRef(p validation.Path, b BackendRef, verr *validation.Error) {
	switch b.Kind {
	case TargetMeshService:
		if b.Tags != nil {
			verr.Add(p.Field("tags"), "must not be set with kind MeshService; use MeshServiceSubset")
		}
	case TargetMeshServiceSubset:
		validateSelectorTags(p.Field("tags"), b.Tags, verr)
	case "":
		verr.Add(p.Field("kind"), "must be set to MeshService or MeshServiceSubset")
		return
	default:
		if why, ok := refusedTargetKinds[b.Kind]; ok {
			verr.Add(p.Field("kind"), fmt.Sprintf("%s is not supported by ecsmesh: %s", b.Kind, why))
		} else {
			verr.Add(p.Field("kind"), fmt.Sprintf("must be MeshService or MeshServiceSubset, got %q", b.Kind))
		}
		return
	}
	validateServiceRef(p, b.Name, verr)
}
