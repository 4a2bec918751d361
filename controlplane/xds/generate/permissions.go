package generate

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/policy"
	"github.com/ecsmesh/ecsmesh/filter"
)

// permissions computes each service's inbound rules from the
// MeshTrafficPermissions that target it, Deny beating Allow:
//   - a service targeted by a permission with at least one Allow (or
//     AllowWithShadowDeny) rule admits only what the Allow rules allow (an
//     allow-list) and refuses everyone else;
//   - Deny rules alone refuse the callers they name and leave the Mesh's
//     defaultPermission for the rest (a deny-list);
//   - a service no permission targets gets the Mesh's defaultPermission.
//
// SPIFFE-ID-form entries become rules as written. Kuma-form entries
// (from[].targetRef and default.action) are resolved at every build to the
// identities of the dataplanes they name, so that the rules follow
// dataplanes as they come and go (see kumaRules). AllowWithShadowDeny is
// passed to the filter as is: the filter admits it as Allow.
func (m *Mesh) permissions(in *Input) {
	mtps := append([]*resource.MeshTrafficPermission(nil), in.Permissions...)
	sort.Slice(mtps, func(i, j int) bool { return mtps[i].Name < mtps[j].Name })
	meshDefault := filter.DefaultAllowMesh
	if in.Mesh.Permission() == resource.PermissionDeny {
		meshDefault = filter.ActionDeny
	}
	callers := &callerIndex{m: m, subsets: map[string][]string{}}
	entries := make([][]kumaEntry, len(mtps))
	for i, p := range mtps {
		entries[i] = callers.entries(p)
	}
	// Services targeted by the same permissions share their rules.
	shared := map[string]permSet{}
	var key strings.Builder
	for _, name := range m.ServiceNames {
		key.Reset()
		for i, p := range mtps {
			if p.Targets(name) {
				key.WriteString(strconv.Itoa(i) + ",")
			}
		}
		if ps, ok := shared[key.String()]; ok {
			m.perms[name] = ps
			continue
		}
		ps := permSet{deflt: meshDefault}
		var kuma []kumaEntry
		for i, p := range mtps {
			if !p.Targets(name) {
				continue
			}
			for _, r := range p.Spec.From {
				if !r.KumaForm() && r.SpiffeID != nil {
					ps.perms = append(ps.perms, filter.Permission{Type: r.SpiffeID.Type, Value: r.SpiffeID.Value, Action: r.Action})
				}
			}
			kuma = append(kuma, entries[i]...)
		}
		rules, allowList := kumaRules(kuma, m.TrustDomain)
		ps.perms = append(ps.perms, rules...)
		for _, p := range ps.perms {
			allowList = allowList || p.Action != filter.ActionDeny
		}
		if allowList {
			ps.deflt = filter.ActionDeny
		}
		shared[key.String()] = ps
		m.perms[name] = ps
	}
}

// kumaEntry is one Kuma-form from entry, its callers resolved.
type kumaEntry struct {
	// from ranks the entry's targetRef (Mesh 0 < MeshSubset 1 <
	// MeshService 2 < MeshServiceSubset 3); top ranks the permission's
	// spec.targetRef (Mesh 0 < a service 1).
	from, top int
	action    string
	// ids are the callers' SPIFFE IDs, sorted (none for the Mesh).
	ids []string
}

// callerIndex resolves from targetRefs to the SPIFFE IDs of the mesh's
// dataplanes, memoizing tag subsets within one build.
type callerIndex struct {
	m       *Mesh
	subsets map[string][]string
}

// entries returns the Kuma-form entries of p.
func (c *callerIndex) entries(p *resource.MeshTrafficPermission) []kumaEntry {
	top := 0
	if p.TopTargetRef().Kind != resource.TargetMesh {
		top = 1
	}
	var out []kumaEntry
	for _, r := range p.Spec.From {
		if r.TargetRef == nil || r.Default == nil {
			continue
		}
		e := kumaEntry{top: top, action: r.Default.Action}
		switch ref := *r.TargetRef; ref.Kind {
		case resource.TargetMesh:
		case resource.TargetMeshService:
			e.from = 2
			if svc := c.m.Services[ref.Name]; svc != nil {
				e.ids = svc.SpiffeIDs
			}
		case resource.TargetMeshSubset, resource.TargetMeshServiceSubset:
			e.from = 1
			if ref.Kind == resource.TargetMeshServiceSubset {
				e.from = 3
			}
			e.ids = c.subset(policy.SubsetOf(ref))
		default:
			continue // refused by validation
		}
		out = append(out, e)
	}
	return out
}

// subset returns the SPIFFE IDs of the dataplanes with an inbound carrying
// every tag of s, sorted.
func (c *callerIndex) subset(s policy.Subset) []string {
	key := tagsKey(s)
	if ids, ok := c.subsets[key]; ok {
		return ids
	}
	ids := []string{}
	for name, dp := range c.m.Dataplanes {
		id, ok := c.m.SpiffeIDs[name]
		if !ok {
			continue
		}
		for i := range dp.Networking.Inbound {
			if s.Matches(dp.Networking.Inbound[i].Tags) {
				ids = append(ids, id)
				break
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	c.subsets[key] = ids
	return ids
}

// severity breaks ties between entries of equal rank: Deny beats
// AllowWithShadowDeny beats Allow.
func severity(action string) int {
	switch action {
	case resource.ActionDeny:
		return 2
	case resource.ActionAllowWithShadowDeny:
		return 1
	}
	return 0
}

// better reports whether a takes precedence over b for a caller both name:
// the more specific from targetRef, then the more specific spec.targetRef,
// then Deny over AllowWithShadowDeny over Allow.
func (a kumaEntry) better(b kumaEntry) bool {
	if a.from != b.from {
		return a.from > b.from
	}
	if a.top != b.top {
		return a.top > b.top
	}
	return severity(a.action) > severity(b.action)
}

// kumaRules turns the Kuma-form entries that apply to one service into
// filter rules, and reports whether any entry allows (which makes the
// service an allow-list, even while the callers it names have no
// dataplanes). Each caller gets the action of the most specific entry
// naming it (Kuma's precedence; Deny on ties); the Mesh entries' winner
// covers every other identity of the mesh:
//   - an Allow (or AllowWithShadowDeny) from the Mesh is a Prefix rule on
//     spiffe://<trust domain>/, and more specific Deny entries become
//     Exact Deny rules that beat it;
//   - a Deny from the Mesh is a Prefix Deny rule, unless a more specific
//     entry allows some caller: then it is the allow-list's default Deny
//     (a Prefix Deny would beat that Allow) and those callers get Exact
//     Allow rules.
func kumaRules(entries []kumaEntry, trustDomain string) (rules []filter.Permission, allowList bool) {
	var mesh *kumaEntry
	best := map[string]kumaEntry{}
	for i, e := range entries {
		allowList = allowList || e.action != resource.ActionDeny
		if e.from == 0 {
			if mesh == nil || e.better(*mesh) {
				mesh = &entries[i]
			}
			continue
		}
		for _, id := range e.ids {
			if b, ok := best[id]; !ok || e.better(b) {
				best[id] = e
			}
		}
	}
	ids := slices.Sorted(maps.Keys(best))
	allows := false
	for _, id := range ids {
		if a := best[id].action; a != resource.ActionDeny && (mesh == nil || mesh.action != a) {
			allows = true
		}
	}
	meshRule := mesh != nil && (mesh.action != resource.ActionDeny || !allows)
	for _, id := range ids {
		a := best[id].action
		if meshRule && mesh.action == a {
			continue // the Mesh rule already says so
		}
		rules = append(rules, filter.Permission{Type: filter.MatchExact, Value: id, Action: a})
	}
	if meshRule {
		rules = append(rules, filter.Permission{Type: filter.MatchPrefix, Value: "spiffe://" + trustDomain + "/", Action: mesh.action})
	}
	return rules, allowList
}
