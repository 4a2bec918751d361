package resource

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Kinds a policy's targetRef may name. TargetMesh and TargetMeshService
// are in meshtrafficpermission.go.
const (
	// TargetMeshSubset selects the inbounds carrying every one of its tags.
	TargetMeshSubset = "MeshSubset"
	// TargetMeshServiceSubset is a MeshService narrowed by tags (e.g.
	// version: v2).
	TargetMeshServiceSubset = "MeshServiceSubset"
	// TargetDataplane selects Dataplanes by name or by labels (all of them
	// when it has neither).
	TargetDataplane = "Dataplane"
	// ProxyTypeSidecar is the only proxy type ecsmesh runs.
	ProxyTypeSidecar = "Sidecar"
)

// refusedTargetKinds are Kuma targetRef kinds ecsmesh knows and refuses,
// with the reason.
var refusedTargetKinds = map[string]string{
	"MeshGateway":          "ecsmesh runs sidecars only, no gateways",
	"MeshHTTPRoute":        "policies cannot target a MeshHTTPRoute; target the Mesh, a service or a Dataplane instead",
	"MeshExternalService":  "ecsmesh has no MeshExternalService resources",
	"MeshMultiZoneService": "ecsmesh runs a single zone",
}

// Policy is a targetRef policy (MeshTimeout, MeshRetry, ...): spec.targetRef
// selects Dataplanes or some of their inbounds; spec.to entries configure
// traffic to destinations, spec.from (and spec.rules) entries configure
// inbound traffic. The resolution in controlplane/policy merges the entries
// of every policy that applies.
type Policy interface {
	Object
	// TopTargetRef returns spec.targetRef, Mesh when absent.
	TopTargetRef() PolicyTargetRef
	// Entries returns the spec.to entries and the inbound ones: spec.from,
	// then spec.rules as entries for the whole mesh. Each Default holds
	// the kind's conf value (e.g. MeshTimeoutConf).
	Entries() (to, from []PolicyEntry)
}

// PolicyEntry is one to or from entry of a policy, kind-independent.
type PolicyEntry struct {
	// Field and Index locate the entry in the policy: to[0], from[1],
	// rules[0].
	Field string
	Index int
	// TargetRef is the destination (to) or the caller (from).
	TargetRef PolicyTargetRef
	// Default is the kind's conf, by value.
	Default any
}

// PolicyTargetRef names what a policy or one of its entries applies to:
// the Mesh, a MeshSubset (tags), a MeshService (kuma.io/service), a
// MeshServiceSubset (service and tags) or Dataplanes (by name or labels).
type PolicyTargetRef struct {
	_ unsupported `refused:"mesh" why:"cross-mesh references are reserved in Kuma and not implemented"`
	_ unsupported `refused:"namespace" why:"Kubernetes namespaces do not exist on ECS; name the service by its kuma.io/service"`
	_ unsupported `refused:"sectionName" why:"ecsmesh inbounds and services have no named sections (ports); target the service or Dataplane as a whole"`
	// Kind is Mesh, MeshSubset, MeshService, MeshServiceSubset or Dataplane.
	Kind string `json:"kind"`
	// Name is the service (MeshService, MeshServiceSubset), the Dataplane,
	// or the policy's own mesh (Mesh, optional).
	Name string `json:"name,omitempty"`
	// Tags select inbounds (MeshSubset) or narrow a service
	// (MeshServiceSubset).
	Tags map[string]string `json:"tags,omitempty"`
	// Labels select Dataplanes by their labels (Dataplane).
	Labels map[string]string `json:"labels,omitempty"`
	// ProxyTypes restricts Mesh and MeshSubset to proxy types; ecsmesh runs
	// only Sidecar.
	ProxyTypes []string `json:"proxyTypes,omitempty"`
}

// PolicyItem is one entry of spec.to or spec.from.
type PolicyItem[C any] struct {
	// TargetRef is the destination (to) or the caller (from).
	TargetRef PolicyTargetRef `json:"targetRef"`
	// Default is the configuration, merged with other entries that apply.
	Default C `json:"default"`
}

// PolicyRule is one entry of spec.rules (Kuma's inbound form since 2.10):
// configuration for all inbound traffic of the selected inbounds, the same
// as a spec.from entry for the whole Mesh.
type PolicyRule[C any] struct {
	_ unsupported `refused:"matches" why:"rules apply to all inbound traffic; matching callers inside rules is not implemented, use spec.from"`
	// Default is the configuration.
	Default C `json:"default"`
}

// topTargetRef returns ref, the Mesh when nil.
func topTargetRef(ref *PolicyTargetRef) PolicyTargetRef {
	if ref == nil {
		return PolicyTargetRef{Kind: TargetMesh}
	}
	return *ref
}

// itemEntries turns the items of field into kind-independent entries.
func itemEntries[C any](field string, items []PolicyItem[C]) []PolicyEntry {
	out := make([]PolicyEntry, 0, len(items))
	for i, it := range items {
		out = append(out, PolicyEntry{Field: field, Index: i, TargetRef: it.TargetRef, Default: it.Default})
	}
	return out
}

// ruleEntries turns spec.rules into entries from the whole Mesh.
func ruleEntries[C any](rules []PolicyRule[C]) []PolicyEntry {
	out := make([]PolicyEntry, 0, len(rules))
	for i, r := range rules {
		out = append(out, PolicyEntry{Field: "rules", Index: i, TargetRef: PolicyTargetRef{Kind: TargetMesh}, Default: r.Default})
	}
	return out
}

// Kinds a policy's spec.targetRef may name.
var topTargetKinds = []string{TargetMesh, TargetMeshSubset, TargetMeshService, TargetMeshServiceSubset, TargetDataplane}

// validatePolicy checks what every policy kind shares: the meta and the
// top-level targetRef.
func validatePolicy(m *Meta, ref *PolicyTargetRef, verr *validation.Error) {
	validateMeta(m, ScopeMesh, verr)
	if ref != nil {
		validateTargetRef(validation.Root().Field("spec").Field("targetRef"), *ref, topTargetKinds, m.Mesh, verr)
	}
}

// validateItems checks each entry's targetRef against allowed and its
// default with conf.
func validateItems[C any](p validation.Path, items []PolicyItem[C], allowed []string, mesh string, conf func(validation.Path, *C, *validation.Error), verr *validation.Error) {
	for i := range items {
		ip := p.Index(i)
		validateTargetRef(ip.Field("targetRef"), items[i].TargetRef, allowed, mesh, verr)
		conf(ip.Field("default"), &items[i].Default, verr)
	}
}

// validateRules checks each spec.rules entry's default with conf.
func validateRules[C any](p validation.Path, rules []PolicyRule[C], conf func(validation.Path, *C, *validation.Error), verr *validation.Error) {
	for i := range rules {
		conf(p.Index(i).Field("default"), &rules[i].Default, verr)
	}
}

// validateInboundSpec checks the to/from/rules combination of the kinds
// with inbound entries (Kuma: rules exclude to and from; one is required).
func validateInboundSpec(p validation.Path, to, from, rules int, verr *validation.Error) {
	if rules > 0 && (to > 0 || from > 0) {
		verr.Add(p, "to and from must be empty when rules is set")
	}
	if rules == 0 && to == 0 && from == 0 {
		verr.Add(p, "at least one of to, from or rules must be set")
	}
}

// validateTargetRef checks ref, whose kind must be one of allowed; mesh is
// the policy's mesh (a Mesh reference may name it).
func validateTargetRef(p validation.Path, ref PolicyTargetRef, allowed []string, mesh string, verr *validation.Error) {
	kp := p.Field("kind")
	if ref.Kind == "" {
		verr.Add(kp, "must be set to one of "+strings.Join(allowed, ", "))
		return
	}
	if why, ok := refusedTargetKinds[ref.Kind]; ok {
		verr.Add(kp, fmt.Sprintf("%s is not supported by ecsmesh: %s", ref.Kind, why))
		return
	}
	if !slices.Contains(allowed, ref.Kind) {
		verr.Add(kp, fmt.Sprintf("must be one of %s here, got %q", strings.Join(allowed, ", "), ref.Kind))
		return
	}
	notSet := func(field string, set bool) {
		if set {
			verr.Add(p.Field(field), "must not be set with kind "+ref.Kind)
		}
	}
	switch ref.Kind {
	case TargetMesh:
		if ref.Name != "" && ref.Name != mesh {
			verr.Add(p.Field("name"), fmt.Sprintf("must be empty or this policy's mesh %q", mesh))
		}
		notSet("tags", ref.Tags != nil)
		notSet("labels", ref.Labels != nil)
		validateProxyTypes(p.Field("proxyTypes"), ref.ProxyTypes, verr)
	case TargetMeshSubset:
		notSet("name", ref.Name != "")
		notSet("labels", ref.Labels != nil)
		validateSelectorTags(p.Field("tags"), ref.Tags, verr)
		validateProxyTypes(p.Field("proxyTypes"), ref.ProxyTypes, verr)
	case TargetMeshService, TargetMeshServiceSubset:
		validateServiceRef(p, ref.Name, verr)
		if ref.Kind == TargetMeshService {
			notSet("tags", ref.Tags != nil)
		} else {
			validateSelectorTags(p.Field("tags"), ref.Tags, verr)
		}
		if ref.Labels != nil {
			verr.Add(p.Field("labels"), "not supported by ecsmesh: ecsmesh has no MeshService resources to select by labels; name the service by its kuma.io/service")
		}
		notSet("proxyTypes", ref.ProxyTypes != nil)
	case TargetDataplane:
		notSet("tags", ref.Tags != nil)
		notSet("proxyTypes", ref.ProxyTypes != nil)
		if ref.Name != "" && ref.Labels != nil {
			verr.Add(p.Field("labels"), "either labels or name may be set, not both")
		}
		if ref.Name != "" && !objectNameRE.MatchString(ref.Name) {
			verr.Add(p.Field("name"), "must be a Dataplane name: letters, digits, '.', '_' or '-'")
		}
		validateLabels(p.Field("labels"), ref.Labels, verr)
	}
}

func validateServiceRef(p validation.Path, name string, verr *validation.Error) {
	switch {
	case name == "":
		verr.Add(p.Field("name"), "must be set to the service's kuma.io/service")
	case !ValidServiceName(name):
		verr.Add(p.Field("name"), "must be a kuma.io/service value: 1-63 letters, digits, '.', '_' or '-'")
	}
}

func validateSelectorTags(p validation.Path, tags map[string]string, verr *validation.Error) {
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		switch {
		case k == "":
			verr.Add(p.Key(k), "key must not be empty")
		case tags[k] == "":
			verr.Add(p.Key(k), "value must not be empty")
		}
	}
}

func validateProxyTypes(p validation.Path, types []string, verr *validation.Error) {
	if types != nil && len(types) == 0 {
		verr.Add(p, "must be absent or list at least one proxy type")
	}
	for i, t := range types {
		switch t {
		case ProxyTypeSidecar:
		case "Gateway":
			verr.Add(p.Index(i), "not supported by ecsmesh: ecsmesh runs sidecars only, no gateways")
		default:
			verr.Add(p.Index(i), fmt.Sprintf("must be Sidecar or Gateway, got %q", t))
		}
	}
}

// validateDurationPositive checks an optional duration is above zero.
func validateDurationPositive(p validation.Path, d *Duration, verr *validation.Error) {
	if d != nil && d.Duration <= 0 {
		verr.Add(p, "must be greater than zero")
	}
}

// validateDurationNonNegative checks an optional duration is zero (off)
// or more.
func validateDurationNonNegative(p validation.Path, d *Duration, verr *validation.Error) {
	if d != nil && d.Duration < 0 {
		verr.Add(p, "must not be negative (0 turns it off)")
	}
}

// validatePositive checks an optional count is above zero.
func validatePositive[T ~int32 | ~uint32 | ~int64](p validation.Path, v *T, verr *validation.Error) {
	if v != nil && *v <= 0 {
		verr.Add(p, "must be greater than zero")
	}
}

// validatePercent checks an optional percentage is in 0..100.
func validatePercent[T ~int32 | ~uint32](p validation.Path, v *T, verr *validation.Error) {
	if v != nil && (*v < 0 || *v > 100) {
		verr.Add(p, "must be a percentage from 0 to 100")
	}
}

// validateNumberPercent checks an optional Number is in 0..100.
func validateNumberPercent(p validation.Path, n *Number, verr *validation.Error) {
	if n != nil && (n.Float64() < 0 || n.Float64() > 100) {
		verr.Add(p, "must be a percentage from 0 to 100")
	}
}

// validateStatus checks an HTTP status code is in 100..599.
func validateStatus(p validation.Path, code int64, verr *validation.Error) {
	if code < 100 || code > 599 {
		verr.Add(p, fmt.Sprintf("must be an HTTP status code from 100 to 599, got %d", code))
	}
}
