package generate

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	golangv3 "github.com/envoyproxy/go-control-plane/contrib/envoy/extensions/filters/http/golang/v3alpha"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

// Node is the per-dataplane part of a dataplane's configuration, without
// its certificate and JWT-SVIDs (see IdentitySecret and
// OutboundFilterConfig). It is immutable and may share resources with
// other Nodes.
type Node struct {
	// Mesh and Name identify the dataplane.
	Mesh, Name string
	// SpiffeID is the dataplane's identity.
	SpiffeID string
	// Listeners are its inbound and explicit outbound listeners.
	Listeners []*Resource
	// Clusters are the static clusters of its local apps.
	Clusters []*Resource
	// Extensions are the inbound filter configurations (ECDS).
	Extensions []*Resource
	// ExtraRoutes are the outbound routes of explicit outbounds of HTTP
	// services; extra is their JSON.
	ExtraRoutes []filter.Route
	extra       routeList
	// internKeys are the keys of the shared resources the Node uses.
	internKeys []string
	// BindOutbounds: the dataplane also gets every VIP listener.
	BindOutbounds bool
	// ViewKey selects the dataplane's View of the mesh (Mesh.ViewOf): the
	// clusters and VIP listeners that carry the policies selecting it.
	ViewKey string
	// Reachable are the services the dataplane may call (nil: every
	// service); its outbound configuration holds no other. See
	// Mesh.NodeClusters.
	Reachable map[string]bool
	// Inbound and Outbound are the resolved traffic policies of each
	// inbound and each destination service, for inspection.
	Inbound  map[int]*fromConf
	Outbound map[string]*toConf
}

// nodeMemo keeps the previous Nodes and the resources several Nodes share
// (local clusters and inbound filter configurations are equal for every
// dataplane of a service).
type nodeMemo struct {
	nodes     map[string]memoNode
	seen      map[string]bool
	interned  map[string]*Resource
	internNew map[string]*Resource
}

type memoNode struct {
	key  string
	dp   *resource.Dataplane
	node *Node
}

func newNodeMemo() *nodeMemo {
	return &nodeMemo{nodes: map[string]memoNode{}, interned: map[string]*Resource{}, internNew: map[string]*Resource{}}
}

// intern returns the shared resource for key, building it once.
func (nm *nodeMemo) intern(key string, build func() (*Resource, error)) (*Resource, error) {
	if r, ok := nm.internNew[key]; ok {
		return r, nil
	}
	if r, ok := nm.interned[key]; ok {
		nm.internNew[key] = r
		return r, nil
	}
	if build == nil {
		return nil, fmt.Errorf("generate: shared resource %q vanished", key)
	}
	r, err := build()
	if err != nil {
		return nil, err
	}
	nm.internNew[key] = r
	return r, nil
}

// BeginNodes starts a round of Node builds; EndNodes forgets the shared
// resources that no Node of the round used.
func (b *Builder) BeginNodes() {
	b.nodes.internNew, b.nodes.seen = map[string]*Resource{}, map[string]bool{}
}

// EndNodes ends a round started by BeginNodes.
func (b *Builder) EndNodes() {
	b.nodes.interned, b.nodes.internNew = b.nodes.internNew, map[string]*Resource{}
}

// Node builds the per-dataplane resources of dp in m, reusing the
// previous Node when nothing it depends on changed.
func (b *Builder) Node(m *Mesh, dp *resource.Dataplane, bindOutbounds bool) (*Node, error) {
	id, ok := m.SpiffeIDs[dp.Name]
	if !ok {
		if err := m.IDErrors[dp.Name]; err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("generate: dataplane %s/%s is not in mesh %s", dp.Mesh, dp.Name, m.Name)
	}
	viewKey := m.policies.viewKey(dp)
	view := m.ViewOf(viewKey)
	reach, reachKey := m.reachable(dp, id, view)
	from := make([]*fromConf, len(dp.Networking.Inbound))
	var sb strings.Builder
	sb.WriteString(m.nodeEpoch + "\x00" + id + "\x00" + strconv.FormatBool(bindOutbounds) + "\x00" + viewKey + "\x00" + reachKey)
	for i := range dp.Networking.Inbound {
		sb.WriteString("\x00" + m.perms[dp.Networking.Inbound[i].Service()].key())
		fc, err := m.policies.fromConf(dp, i)
		if err != nil {
			return nil, fmt.Errorf("generate: dataplane %s/%s inbound %d: %w", dp.Mesh, dp.Name, i, err)
		}
		if from[i] = fc; fc != nil {
			sb.WriteString("\x00" + fc.key)
		}
	}
	for i := range dp.Networking.Outbound {
		if svc := m.Services[dp.Networking.Outbound[i].Service()]; svc != nil {
			sb.WriteString("\x00" + svc.Protocol)
		}
		if tc := view.to[dp.Networking.Outbound[i].Service()]; tc != nil {
			sb.WriteString("\x00" + tc.key)
		}
	}
	key := sb.String()
	mk := m.Name + "/" + dp.Name
	if b.nodes.seen != nil {
		b.nodes.seen[mk] = true
	}
	if prev, ok := b.nodes.nodes[mk]; ok && prev.dp == dp && prev.key == key {
		for _, k := range prev.node.internKeys {
			if _, err := b.nodes.intern(k, nil); err != nil {
				return nil, err
			}
		}
		return prev.node, nil
	}
	n, err := b.buildNode(m, dp, id, bindOutbounds, view, from)
	if n != nil {
		n.Reachable = reach
	}
	if err != nil {
		return nil, err
	}
	b.nodes.nodes[mk] = memoNode{key: key, dp: dp, node: n}
	return n, nil
}

func (b *Builder) buildNode(m *Mesh, dp *resource.Dataplane, id string, bindOutbounds bool, view *View, from []*fromConf) (*Node, error) {
	n := &Node{Mesh: m.Name, Name: dp.Name, SpiffeID: id, BindOutbounds: bindOutbounds, ViewKey: m.policies.viewKey(dp), Outbound: view.to}
	for i, fc := range from {
		if fc != nil {
			if n.Inbound == nil {
				n.Inbound = map[int]*fromConf{}
			}
			n.Inbound[dp.Networking.Inbound[i].Port] = fc
		}
	}
	seenCluster := map[string]bool{}
	for i := range dp.Networking.Inbound {
		in := &dp.Networking.Inbound[i]
		ps := m.perms[in.Service()]
		l, err := inboundListener(dp.Networking.Address, id, in, ps.perms, ps.deflt, m.TrustDomain, m.FilterType, from[i])
		if err != nil {
			return nil, err
		}
		n.Listeners = append(n.Listeners, l)
		cname := LocalClusterName(in.AppAddress(), in.AppPort())
		if !seenCluster[cname] {
			seenCluster[cname] = true
			ck := "cluster\x00" + cname + "\x00" + in.Protocol()
			var breaker *resource.MeshCircuitBreakerConf
			if fc := from[i]; fc != nil && fc.Breaker != nil {
				breaker = fc.Breaker
				ck += "\x00" + fc.key
			}
			n.internKeys = append(n.internKeys, ck)
			c, err := b.nodes.intern(ck, func() (*Resource, error) {
				return localCluster(cname, in.AppAddress(), in.AppPort(), in.Protocol(), breaker)
			})
			if err != nil {
				return nil, err
			}
			n.Clusters = append(n.Clusters, c)
		}
		if !isHTTP(in.Protocol()) {
			continue
		}
		cfg := filter.Config{Mode: filter.ModeInbound, Identity: &filter.Identity{SpiffeID: id}, Inbound: &filter.Inbound{
			Service: in.Service(), Permissions: ps.perms, Default: ps.deflt, JWKS: m.jwks, JWTIssuer: m.jwtIssuer,
		}}
		body, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("generate: encoding inbound filter config of %s/%s: %w", dp.Mesh, dp.Name, err)
		}
		ename := InboundFilterPrefix + strconv.Itoa(in.Port)
		ek := "ecds\x00" + ename + "\x00" + m.FilterType + "\x00" + m.FilterPath + "\x00" + string(body)
		n.internKeys = append(n.internKeys, ek)
		e, err := b.nodes.intern(ek, func() (*Resource, error) {
			a, err := filterExtension(ename, m.FilterType, m.FilterPath, body)
			if err != nil {
				return nil, err
			}
			return &Resource{Name: ename, Version: hash(a.Value), Any: a}, nil
		})
		if err != nil {
			return nil, err
		}
		n.Extensions = append(n.Extensions, e)
	}
	for i := range dp.Networking.Outbound {
		o := &dp.Networking.Outbound[i]
		protocol := resource.ProtocolTCP
		if svc := m.Services[o.Service()]; svc != nil {
			protocol = svc.Protocol
		}
		l, err := outboundListener(o.ListenAddress(), o.Port, o.Service(), protocol, m.FilterType, view.to[o.Service()])
		if err != nil {
			return nil, err
		}
		n.Listeners = append(n.Listeners, l)
		if isHTTP(protocol) {
			r := filter.Route{VIP: strings.TrimPrefix(l.Name, "outbound:"), Cluster: o.Service(), AttachToken: true}
			if svc := m.Services[o.Service()]; svc != nil && len(svc.SpiffeIDs) == 1 {
				r.SpiffeID = svc.SpiffeIDs[0]
			}
			n.ExtraRoutes = append(n.ExtraRoutes, r)
		}
	}
	if len(n.ExtraRoutes) > 0 {
		var err error
		if n.extra, err = encodeRoutes(n.ExtraRoutes); err != nil {
			return nil, fmt.Errorf("generate: encoding outbound routes of %s/%s: %w", dp.Mesh, dp.Name, err)
		}
	}
	return n, nil
}

// filterExtension packs the filter with configuration body as the ECDS
// resource name, in the mesh's form.
func filterExtension(name, filterType, path string, body []byte) (*anypb.Any, error) {
	cfg, err := pack(wrapperspb.String(string(body)))
	if err != nil {
		return nil, err
	}
	var inner *anypb.Any
	if filterType == resource.FilterTypeGo {
		inner, err = pack(&golangv3.Config{LibraryId: PluginName, LibraryPath: path, PluginName: PluginName, PluginConfig: cfg})
	} else {
		inner, err = pack(&wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{
			Name:   PluginName,
			RootId: PluginName,
			Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
				VmId:    PluginName,
				Runtime: wasmRuntime,
				Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
					Specifier: &corev3.DataSource_Filename{Filename: path},
				}}},
			}},
			Configuration: cfg,
			FailurePolicy: wasmv3.FailurePolicy_FAIL_CLOSED,
		}})
	}
	if err != nil {
		return nil, err
	}
	return pack(&corev3.TypedExtensionConfig{Name: name, TypedConfig: inner})
}

// IdentitySecretResource is the SDS secret carrying a dataplane's X.509 SVID.
func IdentitySecretResource(certPEM, keyPEM []byte) (*Resource, error) {
	return newResource(IdentitySecret, &tlsv3.Secret{Name: IdentitySecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: certPEM}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: keyPEM}},
	}}})
}

func trustBundleSecret(pem []byte) (*Resource, error) {
	return newResource(TrustBundleSecret, &tlsv3.Secret{Name: TrustBundleSecret, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: pem}},
	}}})
}
