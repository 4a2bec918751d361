// Package policy resolves targetRef policies (MeshTimeout, MeshRetry, ...)
// for one Dataplane, as Kuma does: which policies select the Dataplane or
// its inbounds, in which order they apply, and the configuration that
// results for each destination (to entries) and each inbound (from and
// rules entries) once their defaults are merged.
//
// The order: policies sorted by the specificity of spec.targetRef (Mesh <
// MeshSubset < MeshService < MeshServiceSubset < Dataplane, and among
// Dataplane references all < by labels < by name), then by name, the
// alphabetically first name applying last so that it wins; within a
// policy, entries in the order written. Each entry that applies is merged
// over the ones before it as a JSON merge patch (RFC 7386): objects merge
// field by field, a field that is set (an explicit 0, false or "0s"
// included) replaces, a list replaces the whole list. MeshHTTPRoute rules
// merge by their matches instead (HTTPRouteRules).
//
// The package is pure: it reads api/resource values and nothing else.
package policy

import (
	"cmp"
	"maps"
	"slices"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// Subset is the set of tags a destination or a caller must carry for an
// entry to apply: {} for the Mesh, {kuma.io/service: backend} for a
// MeshService, plus tags for a MeshSubset or MeshServiceSubset.
type Subset map[string]string

// Matches reports whether tags carry every tag of the subset.
func (s Subset) Matches(tags map[string]string) bool {
	for k, v := range s {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// SubsetOf returns the tags an entry's targetRef stands for.
func SubsetOf(ref resource.PolicyTargetRef) Subset {
	s := Subset{}
	switch ref.Kind {
	case resource.TargetMeshService:
		s[resource.TagService] = ref.Name
	case resource.TargetMeshServiceSubset:
		maps.Copy(s, ref.Tags)
		s[resource.TagService] = ref.Name
	case resource.TargetMeshSubset:
		maps.Copy(s, ref.Tags)
	}
	return s
}

// BackendSubset returns the destination tags of a route's backend: its
// service, narrowed by the tags of a MeshServiceSubset.
func BackendSubset(b resource.BackendRef) Subset {
	s := Subset{resource.TagService: b.Name}
	if b.Kind == resource.TargetMeshServiceSubset {
		for k, v := range b.Tags {
			if k != resource.TagService {
				s[k] = v
			}
		}
	}
	return s
}

// Service returns the tags of a whole service as a destination.
func Service(name string) Subset { return Subset{resource.TagService: name} }

// rank orders top-level targetRefs from the least to the most specific.
func rank(ref resource.PolicyTargetRef) int {
	switch ref.Kind {
	case resource.TargetMesh:
		return 0
	case resource.TargetMeshSubset:
		return 1
	case resource.TargetMeshService:
		return 2
	case resource.TargetMeshServiceSubset:
		return 3
	case resource.TargetDataplane:
		switch {
		case ref.Name != "":
			return 6
		case len(ref.Labels) > 0:
			return 5
		}
		return 4
	}
	return -1
}

// Compare orders two policies of one kind by precedence: negative when a
// applies before b (b overrides a). The more specific top-level targetRef
// applies later; between equals, the alphabetically first name applies
// last, as in Kuma.
func Compare(a, b resource.Policy) int {
	if c := cmp.Compare(rank(a.TopTargetRef()), rank(b.TopTargetRef())); c != 0 {
		return c
	}
	return cmp.Compare(b.GetMeta().Name, a.GetMeta().Name)
}

// Sort orders policies by precedence, least first (stable).
func Sort[P resource.Policy](policies []P) {
	slices.SortStableFunc(policies, func(a, b P) int { return Compare(a, b) })
}

// SelectsInbound reports whether a top-level targetRef selects the inbound
// with tags of dp.
func SelectsInbound(ref resource.PolicyTargetRef, dp *resource.Dataplane, tags map[string]string) bool {
	switch ref.Kind {
	case resource.TargetDataplane:
		return selectsDataplane(ref, dp)
	case resource.TargetMesh, resource.TargetMeshSubset, resource.TargetMeshService, resource.TargetMeshServiceSubset:
		return SubsetOf(ref).Matches(tags)
	}
	return false
}

// Selects reports whether a top-level targetRef selects dp: a Dataplane
// reference by name or labels, any other kind when one of dp's inbounds
// carries its tags.
func Selects(ref resource.PolicyTargetRef, dp *resource.Dataplane) bool {
	if ref.Kind == resource.TargetDataplane {
		return selectsDataplane(ref, dp)
	}
	for i := range dp.Networking.Inbound {
		if SelectsInbound(ref, dp, dp.Networking.Inbound[i].Tags) {
			return true
		}
	}
	return ref.Kind == resource.TargetMesh
}

func selectsDataplane(ref resource.PolicyTargetRef, dp *resource.Dataplane) bool {
	if ref.Name != "" {
		return ref.Name == dp.Name
	}
	return Subset(ref.Labels).Matches(dp.Labels)
}
