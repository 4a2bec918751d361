package xds

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// meshCache is the go-control-plane cache.Cache of the server. Unlike
// SnapshotCache it keeps no per-node copy of the mesh-wide resources: a
// node's resources of a type are the mesh's shared, pre-packed resources
// plus its own few, looked up when a watch is evaluated. Watches are
// re-evaluated only for what changed: one endpoint change touches one
// ClusterLoadAssignment and only the EDS watches subscribed to it.
type meshCache struct {
	mu     sync.Mutex
	meshes map[string]*generate.Mesh
	nodes  map[string]*nodeState // by node ID <mesh>.<name>
	seq    atomic.Int64
}

// nodeState is what the cache knows of one dataplane.
type nodeState struct {
	id       string
	mesh     *generate.Mesh
	node     *generate.Node // nil when the dataplane is not (or no longer) stored
	identity *generate.Resource
	identFor string // SPIFFE ID the identity was issued for
	// tokens are the destination-bound JWT-SVIDs, issued for tokensFor.
	tokens    generate.RouteTokens
	tokensFor string
	outbound  *generate.Resource
	// renewAt is when the certificate is renewed, refreshAt the first
	// token due for renewal.
	renewAt, refreshAt time.Time
	watches            map[*watch]struct{}
}

// watch is one open SotW or delta watch of a stream.
type watch struct {
	ns    *nodeState
	typ   string
	sub   cache.Subscription
	req   *discovery.DiscoveryRequest
	dreq  *discovery.DeltaDiscoveryRequest
	sotw  chan cache.Response
	delta chan cache.DeltaResponse
}

var _ cache.Cache = (*meshCache)(nil)

func newMeshCache() *meshCache {
	return &meshCache{meshes: map[string]*generate.Mesh{}, nodes: map[string]*nodeState{}}
}

// state returns the node's state, creating an empty one. Caller holds mu.
func (c *meshCache) state(id string) *nodeState {
	ns := c.nodes[id]
	if ns == nil {
		ns = &nodeState{id: id, watches: map[*watch]struct{}{}}
		c.nodes[id] = ns
	}
	return ns
}

// resources lists the node's resources of typ (for wildcard
// subscriptions).
func (ns *nodeState) resources(typ string) []*generate.Resource {
	m, n := ns.mesh, ns.node
	if m == nil || n == nil {
		return nil
	}
	switch typ {
	case resourcev3.ListenerType:
		if vips := m.NodeVIPListeners(n); len(vips) > 0 {
			return append(append(make([]*generate.Resource, 0, len(n.Listeners)+len(vips)), n.Listeners...), vips...)
		}
		return n.Listeners
	case resourcev3.ClusterType:
		cs := m.NodeClusters(n)
		return append(append(make([]*generate.Resource, 0, len(n.Clusters)+len(cs)), cs...), n.Clusters...)
	case resourcev3.EndpointType:
		return m.NodeEndpoints(n)
	case resourcev3.SecretType:
		var out []*generate.Resource
		if ns.identity != nil {
			out = append(out, ns.identity)
		}
		if m.TrustBundle != nil {
			out = append(out, m.TrustBundle)
		}
		return out
	case resourcev3.ExtensionConfigType:
		out := append([]*generate.Resource(nil), n.Extensions...)
		if ns.outbound != nil {
			out = append(out, ns.outbound)
		}
		return out
	}
	return nil
}

// get returns the node's resource typ/name, or nil.
func (ns *nodeState) get(typ, name string) *generate.Resource {
	m, n := ns.mesh, ns.node
	if m == nil || n == nil {
		return nil
	}
	switch typ {
	case resourcev3.EndpointType:
		return m.NodeEndpoint(n, name)
	case resourcev3.ClusterType:
		if r := m.NodeCluster(n, name); r != nil {
			return r
		}
	case resourcev3.ListenerType:
		if r := m.NodeVIPListener(n, name); r != nil {
			return r
		}
	case resourcev3.SecretType:
		switch name {
		case generate.IdentitySecret:
			return ns.identity
		case generate.TrustBundleSecret:
			return m.TrustBundle
		}
		return nil
	case resourcev3.ExtensionConfigType:
		if name == generate.OutboundFilter {
			return ns.outbound
		}
	}
	for _, r := range ns.resources(typ) {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// fullState reports whether a SotW response of typ must carry every
// resource (LDS, CDS) rather than only the changed ones.
func fullState(typ string) bool {
	return typ == resourcev3.ListenerType || typ == resourcev3.ClusterType
}

// evaluate computes the response w needs, if any. hints, when not nil,
// names the only resources of w.typ that may have changed since w was last
// evaluated. Caller holds mu.
func (c *meshCache) evaluate(w *watch, hints map[string]bool) bool {
	if w.sotw != nil {
		return c.evaluateSotw(w, hints)
	}
	return c.evaluateDelta(w, hints)
}

func (c *meshCache) evaluateSotw(w *watch, hints map[string]bool) bool {
	returned := w.sub.ReturnedResources()
	var send []*generate.Resource
	var next map[string]string
	if fullState(w.typ) && w.sub.IsWildcard() {
		all := w.ns.resources(w.typ)
		changed := len(all) != len(returned)
		for _, r := range all {
			if v, ok := returned[r.Name]; !ok || v != r.Version {
				changed = true
				break
			}
		}
		if !changed || w.ns.node == nil {
			return false
		}
		send = all
		next = make(map[string]string, len(all))
		for _, r := range all {
			next[r.Name] = r.Version
		}
	} else {
		consider := func(name string) {
			if r := w.ns.get(w.typ, name); r != nil && returned[name] != r.Version {
				send = append(send, r)
			}
		}
		if w.sub.IsWildcard() {
			for _, r := range w.ns.resources(w.typ) {
				if hints == nil || hints[r.Name] {
					consider(r.Name)
				}
			}
		}
		subscribed := w.sub.SubscribedResources()
		if hints != nil && len(hints) < len(subscribed) {
			for name := range hints {
				if _, ok := subscribed[name]; ok {
					consider(name)
				}
			}
		} else {
			for name := range subscribed {
				if hints == nil || hints[name] {
					consider(name)
				}
			}
		}
		if len(send) == 0 {
			return false
		}
		send = dedupResources(send)
		next = maps.Clone(returned)
		if next == nil {
			next = map[string]string{}
		}
		for _, r := range send {
			next[r.Name] = r.Version
		}
		if fullState(w.typ) {
			// Not wildcard: every subscribed resource that exists.
			send = send[:0]
			for name := range subscribed {
				if r := w.ns.get(w.typ, name); r != nil {
					send = append(send, r)
				}
			}
		}
	}
	resp := &sotwResponse{req: w.req, version: strconv.FormatInt(c.seq.Add(1), 10), resources: send, returned: next}
	select {
	case w.sotw <- resp:
	default:
		go func() { w.sotw <- resp }()
	}
	return true
}

func (c *meshCache) evaluateDelta(w *watch, hints map[string]bool) bool {
	returned := w.sub.ReturnedResources()
	var send []*generate.Resource
	var removed []string
	current := map[string]*generate.Resource{}
	if w.sub.IsWildcard() {
		for _, r := range w.ns.resources(w.typ) {
			current[r.Name] = r
		}
	}
	for name := range w.sub.SubscribedResources() {
		if _, ok := current[name]; !ok {
			if r := w.ns.get(w.typ, name); r != nil {
				current[name] = r
			}
		}
	}
	for name, r := range current {
		if hints != nil && !hints[name] {
			continue
		}
		if v, ok := returned[name]; !ok || v != r.Version {
			send = append(send, r)
		}
	}
	for name := range returned {
		if _, ok := current[name]; !ok {
			removed = append(removed, name)
		}
	}
	if len(send) == 0 && len(removed) == 0 {
		return false
	}
	next := make(map[string]string, len(current))
	for name, r := range current {
		next[name] = r.Version
	}
	resp := &deltaResponse{req: w.dreq, version: strconv.FormatInt(c.seq.Add(1), 10), resources: send, removed: removed, returned: next}
	select {
	case w.delta <- resp:
	default:
		go func() { w.delta <- resp }()
	}
	return true
}

func dedupResources(rs []*generate.Resource) []*generate.Resource {
	seen := make(map[string]bool, len(rs))
	out := rs[:0]
	for _, r := range rs {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r)
		}
	}
	return out
}

// CreateWatch implements cache.ConfigWatcher.
func (c *meshCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	return c.open(&watch{typ: req.GetTypeUrl(), sub: sub, req: req, sotw: ch}, req.GetNode().GetId())
}

// CreateDeltaWatch implements cache.ConfigWatcher.
func (c *meshCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	return c.open(&watch{typ: req.GetTypeUrl(), sub: sub, dreq: req, delta: ch}, req.GetNode().GetId())
}

func (c *meshCache) open(w *watch, nodeID string) (func(), error) {
	if nodeID == "" {
		return nil, errors.New("xds: request without node ID")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w.ns = c.state(nodeID)
	if c.evaluate(w, nil) {
		return func() {}, nil
	}
	w.ns.watches[w] = struct{}{}
	return func() {
		c.mu.Lock()
		delete(w.ns.watches, w)
		c.mu.Unlock()
	}, nil
}

// Fetch implements cache.ConfigFetcher; REST polling is not served.
func (c *meshCache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errors.New("xds: fetch is not supported, use ADS")
}

// notify re-evaluates the node's watches; changed, when not nil, maps a
// type to the names that changed (types absent did not change). Caller
// holds mu.
func (c *meshCache) notify(ns *nodeState, changed map[string]map[string]bool) {
	for w := range ns.watches {
		var hints map[string]bool
		if changed != nil {
			h, ok := changed[w.typ]
			if !ok {
				continue
			}
			hints = h
		}
		if c.evaluate(w, hints) {
			delete(ns.watches, w)
		}
	}
}

// sotwResponse is a SotW response of shared, pre-packed resources.
type sotwResponse struct {
	req       *discovery.DiscoveryRequest
	version   string
	resources []*generate.Resource
	returned  map[string]string
}

// GetDiscoveryResponse implements cache.Response.
func (r *sotwResponse) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	anys := make([]*anypb.Any, 0, len(r.resources))
	for _, res := range r.resources {
		a, err := res.Packed()
		if err != nil {
			return nil, err
		}
		anys = append(anys, a)
	}
	return &discovery.DiscoveryResponse{VersionInfo: r.version, Resources: anys, TypeUrl: r.req.GetTypeUrl()}, nil
}

// GetRequest implements cache.Response.
func (r *sotwResponse) GetRequest() *discovery.DiscoveryRequest { return r.req }

// GetVersion implements cache.Response.
func (r *sotwResponse) GetVersion() (string, error) { return r.version, nil }

// GetResponseVersion implements cache.Response.
func (r *sotwResponse) GetResponseVersion() string { return r.version }

// GetReturnedResources implements cache.Response.
func (r *sotwResponse) GetReturnedResources() map[string]string { return r.returned }

// GetContext implements cache.Response.
func (r *sotwResponse) GetContext() context.Context { return context.Background() }

// deltaResponse is a delta response of shared, pre-packed resources.
type deltaResponse struct {
	req       *discovery.DeltaDiscoveryRequest
	version   string
	resources []*generate.Resource
	removed   []string
	returned  map[string]string
}

// GetDeltaDiscoveryResponse implements cache.DeltaResponse.
func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	out := &discovery.DeltaDiscoveryResponse{SystemVersionInfo: r.version, TypeUrl: r.req.GetTypeUrl(), RemovedResources: r.removed}
	for _, res := range r.resources {
		a, err := res.Packed()
		if err != nil {
			return nil, err
		}
		out.Resources = append(out.Resources, &discovery.Resource{Name: res.Name, Version: res.Version, Resource: a})
	}
	return out, nil
}

// GetDeltaRequest implements cache.DeltaResponse.
func (r *deltaResponse) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.req }

// GetSystemVersion implements cache.DeltaResponse.
func (r *deltaResponse) GetSystemVersion() (string, error) { return r.version, nil }

// GetResponseVersion implements cache.DeltaResponse.
func (r *deltaResponse) GetResponseVersion() string { return r.version }

// GetNextVersionMap implements cache.DeltaResponse.
func (r *deltaResponse) GetNextVersionMap() map[string]string { return r.returned }

// GetReturnedResources implements cache.DeltaResponse.
func (r *deltaResponse) GetReturnedResources() map[string]string { return r.returned }

// GetContext implements cache.DeltaResponse.
func (r *deltaResponse) GetContext() context.Context { return context.Background() }
