package generate

import (
	"maps"
	"slices"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

// reachable returns the services dp may call, nil when it may call every
// service: its reachableServices when it lists them, else, with
// ECSMESH_AUTO_REACHABLE_SERVICES, the services whose permissions admit
// its identity; in both cases with its explicit outbounds and the backends
// of the routes of those services. key fingerprints the set.
func (m *Mesh) reachable(dp *resource.Dataplane, id string, view *View) (set map[string]bool, key string) {
	list := dp.Reachable()
	switch {
	case list != nil:
		set = make(map[string]bool, len(list))
		for _, s := range list {
			set[s] = true
		}
	case m.autoReachable:
		set = m.admitting(id)
	default:
		return nil, ""
	}
	for i := range dp.Networking.Outbound {
		set[dp.Networking.Outbound[i].Service()] = true
	}
	for _, s := range slices.Sorted(maps.Keys(set)) {
		tc := view.to[s]
		if tc == nil {
			continue
		}
		for _, r := range tc.HTTPRoutes {
			for _, b := range r.Conf.BackendRefs {
				set[b.Name] = true
			}
			for _, f := range r.Conf.Filters {
				if f.RequestMirror != nil {
					set[f.RequestMirror.BackendRef.Name] = true
				}
			}
		}
		if tc.TCPRoute != nil {
			for _, b := range tc.TCPRoute.BackendRefs {
				set[b.Name] = true
			}
		}
	}
	return set, HashStrings(slices.Sorted(maps.Keys(set))...)
}

// admitting lists the services whose inbound permissions admit id
// (memoized per identity for one build).
func (m *Mesh) admitting(id string) map[string]bool {
	if s, ok := m.admitted[id]; ok {
		return maps.Clone(s)
	}
	s := map[string]bool{}
	for _, name := range m.ServiceNames {
		if m.perms[name].admits(id, m.TrustDomain) {
			s[name] = true
		}
	}
	m.admitted[id] = s
	return maps.Clone(s)
}

// admits evaluates the permissions as the inbound filter does for a
// caller with SPIFFE ID id: Deny beats Allow, then the default.
func (ps permSet) admits(id, trustDomain string) bool {
	allowed := false
	for _, p := range ps.perms {
		ok := p.Value == id
		if p.Type == filter.MatchPrefix {
			ok = strings.HasPrefix(id, p.Value)
		}
		if !ok {
			continue
		}
		if p.Action == filter.ActionDeny {
			if len(p.Rules) > 0 {
				continue // only some requests are refused
			}
			return false
		}
		allowed = true
	}
	if allowed {
		return true
	}
	switch ps.deflt {
	case filter.ActionAllow:
		return true
	case filter.DefaultAllowMesh:
		return strings.HasPrefix(id, "spiffe://"+trustDomain+"/")
	}
	return false
}

// Reaches reports whether n may call service.
func (n *Node) Reaches(service string) bool { return n.Reachable == nil || n.Reachable[service] }

// reachesCluster reports whether n may call the service of a cluster
// (a service's, or one of its subsets', "<service>~<tags>").
func (n *Node) reachesCluster(name string) bool {
	if n.Reachable == nil {
		return true
	}
	svc, _, _ := strings.Cut(name, subsetSeparator)
	return n.Reachable[svc]
}

func (n *Node) filter(rs []*Resource, reaches func(string) bool) []*Resource {
	if n.Reachable == nil {
		return rs
	}
	out := make([]*Resource, 0, len(n.Reachable))
	for _, r := range rs {
		if reaches(r.Name) {
			out = append(out, r)
		}
	}
	return out
}

// NodeClusters are the service clusters n receives: its View's, only
// those of the services it may reach.
func (m *Mesh) NodeClusters(n *Node) []*Resource {
	return n.filter(m.ViewOf(n.ViewKey).Clusters, func(name string) bool { return m.infra[name] || n.reachesCluster(name) })
}

// NodeCluster returns the service cluster name as n receives it, or nil.
func (m *Mesh) NodeCluster(n *Node, name string) *Resource {
	if !m.infra[name] && !n.reachesCluster(name) {
		return nil
	}
	return m.ViewOf(n.ViewKey).ClusterByName[name]
}

// NodeEndpoints are the ClusterLoadAssignments of NodeClusters.
func (m *Mesh) NodeEndpoints(n *Node) []*Resource { return n.filter(m.Endpoints, n.reachesCluster) }

// NodeEndpoint returns the ClusterLoadAssignment name as n receives it,
// or nil.
func (m *Mesh) NodeEndpoint(n *Node, name string) *Resource {
	if !n.reachesCluster(name) {
		return nil
	}
	return m.EndpointByName[name]
}

// NodeVIPListeners are the VIP listeners n receives: none unless it binds
// outbounds, then its View's, only those of the services it may reach.
func (m *Mesh) NodeVIPListeners(n *Node) []*Resource {
	if !n.BindOutbounds {
		return nil
	}
	v := m.ViewOf(n.ViewKey)
	return n.filter(v.VIPListeners, func(name string) bool { return n.Reaches(v.vipService[name]) })
}

// NodeVIPListener returns the VIP listener name as n receives it, or nil.
func (m *Mesh) NodeVIPListener(n *Node, name string) *Resource {
	if !n.BindOutbounds {
		return nil
	}
	v := m.ViewOf(n.ViewKey)
	if !n.Reaches(v.vipService[name]) {
		return nil
	}
	return v.VIPListenerByName[name]
}
