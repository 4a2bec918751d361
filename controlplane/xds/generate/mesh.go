package generate

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

// Input is the stored state of one mesh, as the generator needs it.
type Input struct {
	// Mesh is the Mesh resource.
	Mesh *resource.Mesh
	// Dataplanes are the mesh's Dataplanes. The generator never modifies
	// them; a changed Dataplane must be a new pointer (results are
	// memoized by pointer).
	Dataplanes []*resource.Dataplane
	// Online names the dataplanes with a live xDS stream (on any replica):
	// only their ready inbounds are endpoints.
	Online map[string]bool
	// Identities and Permissions are the mesh's MeshIdentities and
	// MeshTrafficPermissions.
	Identities  []*resource.MeshIdentity
	Permissions []*resource.MeshTrafficPermission
	// VIPs maps a service to its loopback VIP.
	VIPs map[string]netip.Addr
	// Policies are the mesh's traffic policies.
	Policies Policies
	// Generators are the HostnameGenerators; Domain is
	// KUMA_DNS_SERVER_DOMAIN. Together they give each service's hosts.
	Generators []*resource.HostnameGenerator
	Domain     string
	// VIPPort is KUMA_DNS_SERVER_SERVICE_VIP_PORT.
	VIPPort int
	// AutoReachable is ECSMESH_AUTO_REACHABLE_SERVICES: a Dataplane that
	// lists no reachableServices reaches only the services whose
	// permissions admit its identity.
	AutoReachable bool
	// JWKS is the key set whose keys sign the mesh's JWT-SVIDs (and no
	// other mesh's, nor dataplane tokens).
	JWKS json.RawMessage
	// JWTIssuer is the `iss` of the mesh's JWT-SVIDs; inbound filters
	// refuse tokens of another issuer.
	JWTIssuer string
	// TrustBundlePEM is the mesh's trust bundle.
	TrustBundlePEM []byte
	// WasmPath and GoPath are where the sidecars hold the filter's .wasm
	// and .so (default dpapi.FilterWasmPath and dpapi.FilterGoPath).
	WasmPath, GoPath string
}

// Endpoint is one ready inbound of an online dataplane.
type Endpoint struct {
	Address string
	Port    int
}

// Service is one service of a mesh: the distinct kuma.io/service of the
// Dataplanes' inbounds.
type Service struct {
	Name     string
	Protocol string
	// SpiffeIDs are the identities of every dataplane serving it, sorted:
	// upstream TLS accepts exactly these.
	SpiffeIDs []string
	// Endpoints are the ready inbounds of online dataplanes, sorted.
	Endpoints []Endpoint
	// VIP is the service's loopback VIP (invalid when none is allocated).
	VIP netip.Addr
	// Hosts are the service's DNS names.
	Hosts []string
	// clusterKey and vipKey are the memo keys of its cluster and VIP
	// listener; vipListener is the listener without policies.
	clusterKey, vipKey string
	vipListener        *Resource
	// sni is the TLS server name of a subset's cluster (its service);
	// "" for a service, whose name is its SNI.
	sni string
}

// Mesh is the mesh-wide part of every dataplane's configuration. It is
// immutable and shared.
type Mesh struct {
	Name        string
	TrustDomain string
	FilterType  string
	// FilterPath is the file Envoy loads the filter from (the .wasm or the
	// .so, by FilterType).
	FilterPath string
	// Services by name; ServiceNames sorted.
	Services     map[string]*Service
	ServiceNames []string
	// View holds the clusters and VIP listeners of callers no traffic
	// policy selects; views holds those of the callers some do, by
	// Node.ViewKey.
	View
	views map[string]*View
	// Endpoints are sorted by name; EndpointByName indexes them.
	Endpoints      []*Resource
	EndpointByName map[string]*Resource
	// TrustBundle is the trust-bundle secret (nil without a bundle).
	TrustBundle *Resource
	// Routes are the outbound filter's routes to every HTTP service;
	// routes is their JSON, for splicing.
	Routes        []filter.Route
	routes        routeList
	RoutesVersion string
	// SpiffeIDs maps a dataplane name to its SPIFFE ID; IDErrors holds the
	// dataplanes whose identity cannot be rendered.
	SpiffeIDs map[string]string
	IDErrors  map[string]error
	// Dataplanes by name.
	Dataplanes map[string]*resource.Dataplane
	// nodeEpoch changes whenever something every node's resources depend
	// on changes (trust domain, filter form, JWKS, JWT issuer).
	nodeEpoch string
	jwks      json.RawMessage
	jwtIssuer string
	perms     map[string]permSet
	policies  *policyIndex
	// subsets are the clusters of route subsets and collectors, in every
	// View; infra names the collectors' (every Dataplane gets them).
	subsets []*Resource
	infra   map[string]bool
	// autoReachable is ECSMESH_AUTO_REACHABLE_SERVICES; admitted memoizes
	// the services each identity is admitted to.
	autoReachable bool
	admitted      map[string]map[string]bool
}

// View is what a group of callers gets of the mesh-wide resources: a
// cluster and a VIP listener per service, carrying the traffic policies
// that select those callers. Callers no policy selects share the Mesh's
// own View.
type View struct {
	// Clusters and VIPListeners are sorted by name; the maps index them.
	Clusters          []*Resource
	VIPListeners      []*Resource
	ClusterByName     map[string]*Resource
	VIPListenerByName map[string]*Resource
	// to is the resolved policy configuration per destination service
	// (absent when none applies).
	to map[string]*toConf
	// vipService maps a VIP listener's name to its service.
	vipService map[string]string
}

// ViewOf returns the View of callers with a Node's ViewKey.
func (m *Mesh) ViewOf(key string) *View {
	if v := m.views[key]; v != nil {
		return v
	}
	return &m.View
}

type permSet struct {
	perms []filter.Permission
	deflt string
}

type memoEntry struct {
	key string
	res *Resource
}

// Builder builds Meshes and Nodes, reusing the resources whose inputs did
// not change since the previous build. A Builder is not safe for
// concurrent use; the Meshes and Nodes it returns are.
type Builder struct {
	clusters, endpoints, vipListeners map[string]memoEntry
	// viewClusters and viewVIPListeners memoize policy variants by
	// service and configuration.
	viewClusters, viewVIPListeners map[string]memoEntry
	// subsetClusters and subsetEndpoints memoize route subsets by name.
	subsetClusters, subsetEndpoints map[string]memoEntry
	ids                             map[*resource.Dataplane]string
	idMesh                          *resource.Mesh
	idIdentities                    []*resource.MeshIdentity
	nodes                           *nodeMemo
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{
		clusters: map[string]memoEntry{}, endpoints: map[string]memoEntry{}, vipListeners: map[string]memoEntry{},
		viewClusters: map[string]memoEntry{}, viewVIPListeners: map[string]memoEntry{},
		subsetClusters: map[string]memoEntry{}, subsetEndpoints: map[string]memoEntry{},
		ids: map[*resource.Dataplane]string{}, nodes: newNodeMemo(),
	}
}

// Mesh builds the mesh-wide resources of in.
func (b *Builder) Mesh(in *Input) (*Mesh, error) {
	td, err := in.Mesh.TrustDomain()
	if err != nil {
		return nil, fmt.Errorf("generate: trust domain of mesh %s: %w", in.Mesh.Name, err)
	}
	m := &Mesh{
		Name: in.Mesh.Name, TrustDomain: td, FilterType: in.Mesh.FilterType(),
		Services: map[string]*Service{}, SpiffeIDs: make(map[string]string, len(in.Dataplanes)),
		IDErrors: map[string]error{}, Dataplanes: make(map[string]*resource.Dataplane, len(in.Dataplanes)),
		View:          View{ClusterByName: map[string]*Resource{}, VIPListenerByName: map[string]*Resource{}, vipService: map[string]string{}},
		autoReachable: in.AutoReachable, admitted: map[string]map[string]bool{}, infra: map[string]bool{},
		EndpointByName: map[string]*Resource{}, views: map[string]*View{},
		jwks: in.JWKS, jwtIssuer: in.JWTIssuer, perms: map[string]permSet{},
	}
	m.FilterPath = in.WasmPath
	if m.FilterPath == "" {
		m.FilterPath = dpapi.FilterWasmPath
	}
	if m.FilterType == resource.FilterTypeGo {
		m.FilterPath = in.GoPath
		if m.FilterPath == "" {
			m.FilterPath = dpapi.FilterGoPath
		}
	}
	b.spiffeIDs(in, m)
	dps := append([]*resource.Dataplane(nil), in.Dataplanes...)
	sort.Slice(dps, func(i, j int) bool { return dps[i].Name < dps[j].Name })
	for _, dp := range dps {
		m.Dataplanes[dp.Name] = dp
		id, ok := m.SpiffeIDs[dp.Name]
		for i := range dp.Networking.Inbound {
			inb := &dp.Networking.Inbound[i]
			svc := m.Services[inb.Service()]
			if svc == nil {
				svc = &Service{Name: inb.Service(), Protocol: inb.Protocol()}
				m.Services[svc.Name] = svc
				m.ServiceNames = append(m.ServiceNames, svc.Name)
			}
			if ok && (len(svc.SpiffeIDs) == 0 || svc.SpiffeIDs[len(svc.SpiffeIDs)-1] != id) {
				svc.SpiffeIDs = append(svc.SpiffeIDs, id)
			}
			if inb.Ready() && in.Online[dp.Name] {
				svc.Endpoints = append(svc.Endpoints, Endpoint{Address: dp.Networking.Address, Port: inb.Port})
			}
		}
	}
	sort.Strings(m.ServiceNames)
	if err := b.services(in, m); err != nil {
		return nil, err
	}
	if len(in.TrustBundlePEM) > 0 {
		if m.TrustBundle, err = trustBundleSecret(in.TrustBundlePEM); err != nil {
			return nil, err
		}
	}
	m.permissions(in)
	m.policies = newPolicyIndex(in.Policies, m.Name)
	if len(m.policies.inFaults) > 0 {
		m.policies.callers = meshCallers(m, dps)
	}
	if err := b.subsets(in, m, dps); err != nil {
		return nil, err
	}
	if err := m.collectors(); err != nil {
		return nil, err
	}
	if err := m.traceCollectors(); err != nil {
		return nil, err
	}
	if err := b.views(in, m, dps); err != nil {
		return nil, err
	}
	m.nodeEpoch = HashStrings(m.TrustDomain, m.FilterType, m.FilterPath, string(in.JWKS), in.JWTIssuer)
	return m, nil
}

// spiffeIDs renders each dataplane's SPIFFE ID, reusing the previous
// build's unless the mesh or its MeshIdentities changed.
func (b *Builder) spiffeIDs(in *Input, m *Mesh) {
	if b.idMesh != in.Mesh || !samePointers(b.idIdentities, in.Identities) {
		b.ids = map[*resource.Dataplane]string{}
		b.idMesh, b.idIdentities = in.Mesh, append([]*resource.MeshIdentity(nil), in.Identities...)
	}
	next := make(map[*resource.Dataplane]string, len(in.Dataplanes))
	for _, dp := range in.Dataplanes {
		id, ok := b.ids[dp]
		if !ok {
			mi := resource.SelectIdentity(in.Identities, dp)
			sid, err := resource.SPIFFEID(in.Mesh, mi, dp)
			if err != nil {
				m.IDErrors[dp.Name] = err
				continue
			}
			if td := sid.TrustDomain().Name(); td != m.TrustDomain && mi != nil {
				// The mesh's CA signs its own trust domain only; peers must
				// not be told to accept this identity either.
				m.IDErrors[dp.Name] = fmt.Errorf("generate: dataplane %s/%s: SPIFFE ID %s is outside the mesh's trust domain %s (MeshIdentity %s: spiffeID.trustDomain must render to the mesh's mtls.trustDomain)",
					dp.Mesh, dp.Name, sid, m.TrustDomain, mi.Name)
				continue
			}
			id = sid.String()
		}
		next[dp] = id
		m.SpiffeIDs[dp.Name] = id
	}
	b.ids = next
}

func samePointers[T any](a, b []*T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// services builds each service's cluster, endpoints and VIP listener,
// reusing the previous ones whose inputs are unchanged.
func (b *Builder) services(in *Input, m *Mesh) error {
	clusters, endpoints, vipls := map[string]memoEntry{}, map[string]memoEntry{}, map[string]memoEntry{}
	var sb strings.Builder
	for _, name := range m.ServiceNames {
		svc := m.Services[name]
		sort.Strings(svc.SpiffeIDs)
		svc.SpiffeIDs = dedup(svc.SpiffeIDs)
		sort.Slice(svc.Endpoints, func(i, j int) bool {
			if svc.Endpoints[i].Address != svc.Endpoints[j].Address {
				return svc.Endpoints[i].Address < svc.Endpoints[j].Address
			}
			return svc.Endpoints[i].Port < svc.Endpoints[j].Port
		})
		svc.VIP = in.VIPs[name]
		hosts, _ := resource.Hostnames(in.Domain, "", resource.Service{Mesh: m.Name, Name: name, Protocol: svc.Protocol}, in.Generators)
		svc.Hosts = hosts

		sb.Reset()
		sb.WriteString(svc.Protocol)
		for _, id := range svc.SpiffeIDs {
			sb.WriteByte(0)
			sb.WriteString(id)
		}
		svc.clusterKey = sb.String()
		c, err := memo(b.clusters, clusters, name, svc.clusterKey, func() (*Resource, error) { return serviceCluster(svc, nil) })
		if err != nil {
			return err
		}
		m.Clusters = append(m.Clusters, c)
		m.ClusterByName[name] = c

		sb.Reset()
		for _, ep := range svc.Endpoints {
			sb.WriteString(ep.Address)
			sb.WriteByte(':')
			sb.WriteString(strconv.Itoa(ep.Port))
			sb.WriteByte(0)
		}
		e, err := memo(b.endpoints, endpoints, name, sb.String(), func() (*Resource, error) { return serviceEndpoints(svc) })
		if err != nil {
			return err
		}
		m.Endpoints = append(m.Endpoints, e)
		m.EndpointByName[name] = e

		if svc.VIP.IsValid() && in.VIPPort > 0 {
			svc.vipKey = svc.VIP.String() + "\x00" + svc.Protocol + "\x00" + m.FilterType + "\x00" + strconv.Itoa(in.VIPPort)
			l, err := memo(b.vipListeners, vipls, name, svc.vipKey, func() (*Resource, error) {
				return outboundListener(svc.VIP.String(), in.VIPPort, name, svc.Protocol, m.FilterType, nil)
			})
			if err != nil {
				return err
			}
			m.VIPListeners = append(m.VIPListeners, l)
			m.VIPListenerByName[l.Name] = l
			m.vipService[l.Name] = name
			svc.vipListener = l
		}
		if isHTTP(svc.Protocol) && (svc.VIP.IsValid() || len(svc.Hosts) > 0) {
			r := filter.Route{Cluster: name, Hosts: svc.Hosts, AttachToken: true}
			if len(svc.SpiffeIDs) == 1 {
				r.SpiffeID = svc.SpiffeIDs[0]
			}
			if svc.VIP.IsValid() && in.VIPPort > 0 {
				r.VIP = netip.AddrPortFrom(svc.VIP, uint16(in.VIPPort)).String()
			}
			m.Routes = append(m.Routes, r)
		}
	}
	sort.Slice(m.VIPListeners, func(i, j int) bool { return m.VIPListeners[i].Name < m.VIPListeners[j].Name })
	b.clusters, b.endpoints, b.vipListeners = clusters, endpoints, vipls
	rl, err := encodeRoutes(m.Routes)
	if err != nil {
		return fmt.Errorf("generate: encoding routes of mesh %s: %w", m.Name, err)
	}
	m.routes = rl
	m.RoutesVersion = hash(rl.json)
	return nil
}

// memo returns prev[name]'s resource when its key equals key, else builds
// one, and records it in next.
func memo(prev, next map[string]memoEntry, name, key string, build func() (*Resource, error)) (*Resource, error) {
	if e, ok := prev[name]; ok && e.key == key {
		next[name] = e
		return e.res, nil
	}
	r, err := build()
	if err != nil {
		return nil, err
	}
	next[name] = memoEntry{key: key, res: r}
	return r, nil
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// permKey fingerprints a service's inbound rules.
func (ps permSet) key() string {
	var sb strings.Builder
	sb.WriteString(ps.deflt)
	for _, p := range ps.perms {
		sb.WriteString("\x00" + p.Type + "\x00" + p.Value + "\x00" + p.Action)
	}
	return sb.String()
}
