package xds

import (
	"strings"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// NodeID is the xDS node ID of a dataplane: <mesh>.<name>.
func NodeID(mesh, name string) string { return mesh + "." + name }

// splitNodeID splits a node ID at its first dot (mesh names have none).
func splitNodeID(id string) (mesh, name string, ok bool) {
	mesh, name, ok = strings.Cut(id, ".")
	return mesh, name, ok && mesh != "" && name != ""
}

// changes maps a type URL to the names of its resources that changed.
type changes map[string]map[string]bool

func (c changes) add(typ, name string) {
	if c[typ] == nil {
		c[typ] = map[string]bool{}
	}
	c[typ][name] = true
}

func diffByName(out changes, typ string, old, cur map[string]*generate.Resource) {
	for name, r := range cur {
		if o := old[name]; o == nil || o.Version != r.Version {
			out.add(typ, name)
		}
	}
	for name := range old {
		if cur[name] == nil {
			out.add(typ, name)
		}
	}
}

// diffMesh lists the shared resources that differ between two builds of
// a mesh, for callers of a View: clusters and VIP listeners as the View
// of oldKey in old and of curKey in cur.
func diffMesh(old, cur *generate.Mesh, oldKey, curKey string) changes {
	out := changes{}
	if old == nil {
		old = &generate.Mesh{}
	}
	ov, cv := old.ViewOf(oldKey), cur.ViewOf(curKey)
	diffByName(out, resourcev3.ClusterType, ov.ClusterByName, cv.ClusterByName)
	diffByName(out, resourcev3.EndpointType, old.EndpointByName, cur.EndpointByName)
	diffByName(out, resourcev3.ListenerType, ov.VIPListenerByName, cv.VIPListenerByName)
	if (old.TrustBundle == nil) != (cur.TrustBundle == nil) || (cur.TrustBundle != nil && old.TrustBundle.Version != cur.TrustBundle.Version) {
		out.add(resourcev3.SecretType, generate.TrustBundleSecret)
	}
	return out
}

// refreshOutbound recomputes the node's outbound filter resource and
// reports whether its version changed. Caller holds mu.
func (ns *nodeState) refreshOutbound() bool {
	if ns.mesh == nil || ns.node == nil {
		changed := ns.outbound != nil
		ns.outbound = nil
		return changed
	}
	r := generate.OutboundFilterConfig(ns.mesh, ns.node, ns.tokens)
	changed := ns.outbound == nil || ns.outbound.Version != r.Version
	ns.outbound = r
	return changed
}

// setMesh installs a build of mesh m with the Nodes of its dataplanes and
// wakes the watches it affects. It returns the IDs of the nodes that are
// no longer stored (their streams should be closed).
func (c *meshCache) setMesh(m *generate.Mesh, nodes map[string]*generate.Node) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.meshes[m.Name]
	c.meshes[m.Name] = m
	diffs := map[[2]string]changes{}
	for name, n := range nodes {
		ns := c.state(NodeID(m.Name, name))
		nodeChanged := ns.node != n
		oldKey := ""
		if ns.node != nil {
			oldKey = ns.node.ViewKey
		}
		ns.mesh, ns.node = m, n
		outChanged := ns.refreshOutbound()
		if len(ns.watches) == 0 {
			continue
		}
		if nodeChanged {
			c.notify(ns, nil)
			continue
		}
		dk := [2]string{oldKey, n.ViewKey}
		diff, ok := diffs[dk]
		if !ok {
			diff = diffMesh(old, m, oldKey, n.ViewKey)
			diffs[dk] = diff
		}
		ch := diff
		if outChanged {
			ch = changes{}
			for t, names := range diff {
				ch[t] = names
			}
			ch.add(resourcev3.ExtensionConfigType, generate.OutboundFilter)
		}
		if len(ch) > 0 {
			c.notify(ns, ch)
		}
	}
	var gone []string
	prefix := m.Name + "."
	for id, ns := range c.nodes {
		if !strings.HasPrefix(id, prefix) {
			continue
		}
		if _, name, _ := splitNodeID(id); nodes[name] == nil {
			gone = append(gone, id)
			if len(ns.watches) == 0 {
				delete(c.nodes, id)
			} else {
				ns.node = nil
			}
		}
	}
	return gone
}

// meshNames lists the meshes the cache holds.
func (c *meshCache) meshNames() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.meshes))
	for name := range c.meshes {
		out[name] = true
	}
	return out
}

// dropMesh forgets a deleted mesh and returns its node IDs.
func (c *meshCache) dropMesh(mesh string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.meshes, mesh)
	var gone []string
	for id, ns := range c.nodes {
		if m, _, _ := splitNodeID(id); m == mesh {
			gone = append(gone, id)
			if len(ns.watches) == 0 {
				delete(c.nodes, id)
			} else {
				ns.node, ns.mesh = nil, nil
			}
		}
	}
	return gone
}

// identityUpdate is what ensureIdentity installs for a node.
type identityUpdate struct {
	// secret, when not nil, is a new certificate for forID, renewed at
	// renewAt.
	secret  *generate.Resource
	forID   string
	renewAt time.Time
	// setTokens installs tokens (issued for tokensFor; the first due for
	// renewal at refreshAt).
	setTokens bool
	tokens    generate.RouteTokens
	tokensFor string
	refreshAt time.Time
}

// setIdentity installs a node's certificate and JWT-SVIDs.
func (c *meshCache) setIdentity(id string, u identityUpdate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns := c.state(id)
	ch := changes{}
	if u.secret != nil && (ns.identity == nil || ns.identity.Version != u.secret.Version) {
		ns.identity, ns.identFor, ns.renewAt = u.secret, u.forID, u.renewAt
		ch.add(resourcev3.SecretType, generate.IdentitySecret)
	}
	if u.setTokens {
		ns.tokens, ns.tokensFor, ns.refreshAt = u.tokens, u.tokensFor, u.refreshAt
	}
	if ns.refreshOutbound() {
		ch.add(resourcev3.ExtensionConfigType, generate.OutboundFilter)
	}
	if len(ch) > 0 {
		c.notify(ns, ch)
	}
}

// nodeView is a consistent copy of what the cache holds for a node.
type nodeView struct {
	mesh               *generate.Mesh
	node               *generate.Node
	identity           *generate.Resource
	identFor           string
	tokens             generate.RouteTokens // never modified once installed
	tokensFor          string
	outbound           *generate.Resource
	renewAt, refreshAt time.Time
}

func (c *meshCache) view(id string) (nodeView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns := c.nodes[id]
	if ns == nil || ns.node == nil {
		return nodeView{}, false
	}
	return nodeView{mesh: ns.mesh, node: ns.node, identity: ns.identity, identFor: ns.identFor, tokens: ns.tokens,
		tokensFor: ns.tokensFor, outbound: ns.outbound, renewAt: ns.renewAt, refreshAt: ns.refreshAt}, true
}

// releaseIdentity drops a disconnected node's certificate and tokens.
func (c *meshCache) releaseIdentity(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ns := c.nodes[id]; ns != nil {
		ns.identity, ns.identFor, ns.tokens, ns.tokensFor = nil, "", nil, ""
		ns.renewAt, ns.refreshAt = time.Time{}, time.Time{}
		ns.refreshOutbound()
		if ns.node == nil && len(ns.watches) == 0 {
			delete(c.nodes, id)
		}
	}
}
