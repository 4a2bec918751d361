// Package resource is ecsmesh's resource model: Mesh, Dataplane,
// MeshIdentity, HostnameGenerator, MeshTrafficPermission and
// OnboardingPolicy, and the traffic policies (MeshTimeout, MeshRetry,
// MeshCircuitBreaker, MeshHealthCheck, MeshHTTPRoute, MeshTCPRoute,
// MeshRateLimit, MeshFaultInjection), in Kuma-compatible YAML/JSON, with
// validation that collects every violation and its field path.
// docs/reference.md lists every kind and field; docs/policies.md the
// policies.
package resource

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Well-known label and tag keys (Kuma's).
const (
	TagService  = "kuma.io/service"
	TagProtocol = "kuma.io/protocol"
	TagWorkload = "kuma.io/workload"
	TagMesh     = "kuma.io/mesh"
	TagType     = "kuma.io/type"
)

// Meta is the part every resource shares.
type Meta struct {
	// Type is the kind, e.g. "Dataplane".
	Type string `json:"type"`
	// Mesh is the mesh of a mesh-scoped resource; empty for global kinds.
	Mesh string `json:"mesh,omitempty"`
	// Name is unique per kind (and mesh).
	Name string `json:"name"`
	// Labels are free-form; kuma.io/workload on a Dataplane names its workload.
	Labels map[string]string `json:"labels,omitempty"`
	// CreationTime and ModificationTime are set by the store; ignored on input.
	CreationTime     *time.Time `json:"creationTime,omitempty"`
	ModificationTime *time.Time `json:"modificationTime,omitempty"`
}

// GetMeta returns the meta itself, so that every resource embedding Meta
// satisfies Object.
func (m *Meta) GetMeta() *Meta { return m }

// Object is any resource of this package.
type Object interface {
	// GetMeta returns the common fields.
	GetMeta() *Meta
	// Validate returns every violation of the resource taken alone, or nil.
	Validate() *validation.Error
}

// Duration is a time.Duration written as a Go duration string ("1h", "90s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "1h30m"-style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"1h\" or \"90s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("must be a duration string such as \"1h\" or \"90s\": %q", s)
	}
	d.Duration = v
	return nil
}

var (
	meshNameRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	objectNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$`)
	serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
)

// ValidMeshName reports whether s can name a mesh (a DNS label: it becomes
// part of the trust domain).
func ValidMeshName(s string) bool { return meshNameRE.MatchString(s) }

// ValidServiceName reports whether s can name a service (a DNS label or a
// dotted name of them, ≤ 63 characters, since it becomes a hostname).
func ValidServiceName(s string) bool { return serviceNameRE.MatchString(s) }

func validateMeta(m *Meta, scope Scope, verr *validation.Error) {
	root := validation.Root()
	switch {
	case m.Name == "":
		verr.Add(root.Field("name"), "must be set")
	case !objectNameRE.MatchString(m.Name):
		verr.Add(root.Field("name"), "must be 1-253 characters of letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
	}
	switch scope {
	case ScopeMesh:
		switch {
		case m.Mesh == "":
			verr.Add(root.Field("mesh"), "must be set")
		case !ValidMeshName(m.Mesh):
			verr.Add(root.Field("mesh"), "must be a DNS label: lowercase letters, digits and '-', at most 63 characters")
		}
	case ScopeGlobal:
		if m.Mesh != "" && m.Type != KindMesh {
			verr.Add(root.Field("mesh"), fmt.Sprintf("must not be set: %s is a global resource", m.Type))
		}
	}
	validateLabels(root.Field("labels"), m.Labels, verr)
}

func validateLabels(p validation.Path, labels map[string]string, verr *validation.Error) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k == "" || len(k) > 253 || strings.ContainsAny(k, " \t\n") {
			verr.Add(p.Key(k), "key must be 1-253 characters without spaces")
		}
		if len(labels[k]) > 253 {
			verr.Add(p.Key(k), "value must be at most 253 characters")
		}
	}
}

// LabelSelector selects by exact label values; empty selects everything.
type LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Matches reports whether every label of the selector is in labels.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Size is the number of labels the selector requires (its specificity).
func (s *LabelSelector) Size() int {
	if s == nil {
		return 0
	}
	return len(s.MatchLabels)
}
