package generate

import (
	"cmp"
	"maps"
	"slices"
	"sort"

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
// dataplanes as they come and go (see kumaResolved). AllowWithShadowDeny is
// passed to the filter as is: the filter admits it as Allow.
func (m *Mesh) permissions(in *Input) {
	mtps := append([]*resource.MeshTrafficPermission(nil), in.Permissions...)
	sort.Slice(mtps, func(i, j int) bool { return mtps[i].Name < mtps[j].Name })
	meshDefault := filter.DefaultAllowMesh
	if in.Mesh.Permission() == resource.PermissionDeny {
		meshDefault = filter.ActionDeny
	}
	// Index the permissions: those for every service (mesh-wide, their
	// Kuma entries resolved once) and those for one service.
	callers := &callerIndex{m: m, subsets: map[string][]string{}}
	entries := make([][]kumaEntry, len(mtps))
	var meshWide, base []int
	byService := map[string][]int{}
	var baseEntries []kumaEntry
	for i, p := range mtps {
		entries[i] = callers.entries(p)
		ref := p.TopTargetRef()
		switch svc := cmp.Or(ref.Name, ref.Tags[resource.TagService]); {
		case ref.Kind == resource.TargetMesh:
			meshWide = append(meshWide, i)
			baseEntries = append(baseEntries, entries[i]...)
		case p.Targets(svc):
			byService[svc] = append(byService[svc], i)
		}
	}
	baseKuma := resolveKuma(baseEntries)
	// Services targeted by the mesh-wide permissions alone share their
	// rules.
	var shared *permSet
	for _, name := range m.ServiceNames {
		own := byService[name]
		if len(own) == 0 && shared != nil {
			m.perms[name] = *shared
			continue
		}
		base = mergeIndexes(base[:0], meshWide, own)
		ps := permSet{deflt: meshDefault}
		var ownEntries []kumaEntry
		for _, i := range base {
			for _, r := range mtps[i].Spec.From {
				if !r.KumaForm() && r.SpiffeID != nil {
					ps.perms = append(ps.perms, filter.Permission{Type: r.SpiffeID.Type, Value: r.SpiffeID.Value, Action: r.Action, Rules: l7Rules(r.Rules)})
				}
			}
		}
		for _, i := range own {
			ownEntries = append(ownEntries, entries[i]...)
		}
		ownKuma := resolveKuma(ownEntries)
		ps.perms = merged{&baseKuma, &ownKuma}.appendRules(ps.perms, m.TrustDomain)
		allowList := baseKuma.allowList || ownKuma.allowList
		for _, p := range ps.perms {
			allowList = allowList || p.Action != filter.ActionDeny
		}
		if allowList {
			ps.deflt = filter.ActionDeny
		}
		m.perms[name] = ps
		if len(own) == 0 {
			shared = &ps
		}
	}
}

// mergeIndexes appends the union of the sorted lists a and b to out, in
// order.
func mergeIndexes(out, a, b []int) []int {
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
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

// kumaResolved is what Kuma-form entries say about each caller: the
// winning entry per SPIFFE ID, the winner among the Mesh entries (which
// covers every other identity of the mesh), and whether any entry allows.
type kumaResolved struct {
	ids       []string // sorted
	win       []kumaEntry
	mesh      *kumaEntry
	allowList bool
}

// resolveKuma picks, for each caller the entries name, the most specific
// entry naming it (Kuma's precedence; Deny on ties).
func resolveKuma(entries []kumaEntry) kumaResolved {
	var r kumaResolved
	if len(entries) == 0 {
		return r
	}
	best := map[string]int{}
	for i, e := range entries {
		r.allowList = r.allowList || e.action != resource.ActionDeny
		if e.from == 0 {
			if r.mesh == nil || e.better(*r.mesh) {
				r.mesh = &entries[i]
			}
			continue
		}
		for _, id := range e.ids {
			if b, ok := best[id]; !ok || e.better(entries[b]) {
				best[id] = i
			}
		}
	}
	r.ids = slices.Sorted(maps.Keys(best))
	r.win = make([]kumaEntry, len(r.ids))
	for i, id := range r.ids {
		r.win[i] = entries[best[id]]
	}
	return r
}

// merged is the resolutions of two sets of entries together (r the
// mesh-wide ones, o a service's own), walked without copying r.
type merged struct{ r, o *kumaResolved }

// mesh is the winner among both sets' Mesh entries.
func (m merged) mesh() *kumaEntry {
	if m.o.mesh != nil && (m.r.mesh == nil || m.o.mesh.better(*m.r.mesh)) {
		return m.o.mesh
	}
	return m.r.mesh
}

// each calls fn with every caller in SPIFFE ID order and its winning
// entry, until fn returns false.
func (m merged) each(fn func(id string, w *kumaEntry) bool) {
	r, o := m.r, m.o
	i, j := 0, 0
	for i < len(r.ids) || j < len(o.ids) {
		var ok bool
		switch {
		case j == len(o.ids) || (i < len(r.ids) && r.ids[i] < o.ids[j]):
			ok = fn(r.ids[i], &r.win[i])
			i++
		case i == len(r.ids) || o.ids[j] < r.ids[i]:
			ok = fn(o.ids[j], &o.win[j])
			j++
		default:
			w := &r.win[i]
			if o.win[j].better(*w) {
				w = &o.win[j]
			}
			ok = fn(r.ids[i], w)
			i, j = i+1, j+1
		}
		if !ok {
			return
		}
	}
}

// appendRules appends r's filter rules to out. Each caller gets the action
// of its winning entry; the Mesh entries' winner covers every other
// identity of the mesh:
//   - an Allow (or AllowWithShadowDeny) from the Mesh is a Prefix rule on
//     spiffe://<trust domain>/, and more specific Deny entries become
//     Exact Deny rules that beat it;
//   - a Deny from the Mesh is a Prefix Deny rule, unless a more specific
//     entry allows some caller: then it is the allow-list's default Deny
//     (a Prefix Deny would beat that Allow) and those callers get Exact
//     Allow rules.
func (m merged) appendRules(out []filter.Permission, trustDomain string) []filter.Permission {
	mesh := m.mesh()
	allows := false
	m.each(func(_ string, w *kumaEntry) bool {
		allows = w.action != resource.ActionDeny && (mesh == nil || mesh.action != w.action)
		return !allows
	})
	meshRule := mesh != nil && (mesh.action != resource.ActionDeny || !allows)
	out = slices.Grow(out, len(m.r.ids)+len(m.o.ids)+1)
	m.each(func(id string, w *kumaEntry) bool {
		if !meshRule || mesh.action != w.action { // else the Mesh rule already says so
			out = append(out, filter.Permission{Type: filter.MatchExact, Value: id, Action: w.action})
		}
		return true
	})
	if meshRule {
		out = append(out, filter.Permission{Type: filter.MatchPrefix, Value: "spiffe://" + trustDomain + "/", Action: mesh.action})
	}
	return out
}

// l7Rules are a permission entry's rules in the filter's form.
func l7Rules(rules []resource.PermissionL7Rule) []filter.PermissionRule {
	if len(rules) == 0 {
		return nil
	}
	out := make([]filter.PermissionRule, len(rules))
	for i, r := range rules {
		out[i].Match.Methods = r.Match.Methods
		for _, p := range r.Match.Paths {
			out[i].Match.Paths = append(out[i].Match.Paths, filter.PathMatch{Type: p.Type, Value: p.Value})
		}
	}
	return out
}
