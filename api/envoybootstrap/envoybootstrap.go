// Package envoybootstrap builds the Envoy v3 bootstrap of an ecsmesh sidecar:
// the node (ID "<mesh>.<name>", cluster = the first inbound service,
// metadata), ADS over TLS to the control plane's xDS port authenticated with
// the dataplane token, and the admin listener on 127.0.0.1. With reloadable
// tokens Envoy reads the token from a file on every stream through the
// envoy.grpc_credentials.file_based_metadata call credentials, so the
// agent's refreshes take effect without a restart; otherwise the token is
// inlined as initial gRPC metadata. Either way Envoy checks the control
// plane's certificate chain and its name: the static ADS cluster requires
// the xDS host among the certificate's SANs (ServerSANMatcher) and sends it
// as SNI when it is a name; the Google gRPC client checks the target host
// as gRPC always does. Every bootstrap passes ValidateAll().
package envoybootstrap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	grpccredv3 "github.com/envoyproxy/go-control-plane/envoy/config/grpc_credential/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Names used in the bootstrap.
const (
	// ADSClusterName is the static cluster of the control plane.
	ADSClusterName = "ecsmesh_xds"
	// FileBasedMetadata is the gRPC credentials plugin reading the token file.
	FileBasedMetadata = "envoy.grpc_credentials.file_based_metadata"
	// DefaultAdminPort is Envoy's admin port on 127.0.0.1.
	DefaultAdminPort = 9901
	// DefaultCABundle is used when no CA file is given (system roots).
	DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"
)

// Node metadata keys the control plane reads (the only ones the bootstrap
// carries).
const (
	// MetaBindOutbounds true asks for a listener on every reachable
	// service's VIP (ecsmesh-dp --bind-outbounds), like the Dataplane
	// label resource.LabelBindOutbounds.
	MetaBindOutbounds = "ecsmesh.io/bind-outbounds"
)

// Params describe one sidecar's bootstrap.
type Params struct {
	// Mesh and Name identify the dataplane; the node ID is Mesh.Name.
	Mesh string
	Name string
	// Service is the node's cluster (its first inbound service).
	Service string
	// Metadata is added to the node metadata.
	Metadata map[string]string
	// XDSHost and XDSPort are the control plane's ADS address.
	XDSHost string
	XDSPort int
	// CACertFile verifies the CP's certificate; default the system bundle.
	CACertFile string
	// Token is inlined when TokenFile is empty.
	Token string
	// TokenFile, when set, is read by Envoy on every stream
	// (file_based_metadata): reloadable tokens.
	TokenFile string
	// AdminPort on 127.0.0.1; default 9901.
	AdminPort int
}

// NodeID returns "<mesh>.<name>", the node ID the xDS server requires.
func NodeID(mesh, name string) string { return mesh + "." + name }

// Build returns the validated bootstrap.
func Build(p Params) (*bootstrapv3.Bootstrap, error) {
	if p.Mesh == "" || p.Name == "" {
		return nil, errors.New("envoybootstrap: mesh and name are required")
	}
	if p.XDSHost == "" || p.XDSPort <= 0 || p.XDSPort > 65535 {
		return nil, fmt.Errorf("envoybootstrap: invalid xDS address %q port %d", p.XDSHost, p.XDSPort)
	}
	if p.Token == "" && p.TokenFile == "" {
		return nil, errors.New("envoybootstrap: a token or a token file is required")
	}
	if p.AdminPort == 0 {
		p.AdminPort = DefaultAdminPort
	}
	if p.CACertFile == "" {
		p.CACertFile = DefaultCABundle
	}
	meta := map[string]any{}
	keys := make([]string, 0, len(p.Metadata))
	for k := range p.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		meta[k] = p.Metadata[k]
	}
	md, err := structpb.NewStruct(meta)
	if err != nil {
		return nil, fmt.Errorf("envoybootstrap: node metadata: %w", err)
	}
	svc, err := p.grpcService()
	if err != nil {
		return nil, err
	}
	ads := &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3, ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: NodeID(p.Mesh, p.Name), Cluster: p.Service, Metadata: md},
		Admin: &bootstrapv3.Admin{
			Address: socketAddress("127.0.0.1", p.AdminPort),
		},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:                   corev3.ApiConfigSource_GRPC,
				TransportApiVersion:       corev3.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices:              []*corev3.GrpcService{svc},
			},
			CdsConfig: ads,
			LdsConfig: proto.Clone(ads).(*corev3.ConfigSource),
		},
	}
	if p.TokenFile == "" {
		c, err := p.adsCluster()
		if err != nil {
			return nil, err
		}
		b.StaticResources = &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{c}}
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoybootstrap: the bootstrap is invalid: %w", err)
	}
	if err := validateAnys(b); err != nil {
		return nil, err
	}
	return b, nil
}

func socketAddress(host string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

func (p Params) grpcService() (*corev3.GrpcService, error) {
	if p.TokenFile == "" {
		return &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ADSClusterName}},
			InitialMetadata: []*corev3.HeaderValue{{Key: "authorization", Value: "Bearer " + p.Token}},
		}, nil
	}
	plugin, err := anypb.New(&grpccredv3.FileBasedMetadataConfig{
		SecretData:   &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: p.TokenFile}},
		HeaderKey:    "authorization",
		HeaderPrefix: "Bearer ",
	})
	if err != nil {
		return nil, fmt.Errorf("envoybootstrap: packing file_based_metadata: %w", err)
	}
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{
			TargetUri:  net.JoinHostPort(p.XDSHost, strconv.Itoa(p.XDSPort)),
			StatPrefix: "ads",
			ChannelCredentials: &corev3.GrpcService_GoogleGrpc_ChannelCredentials{
				CredentialSpecifier: &corev3.GrpcService_GoogleGrpc_ChannelCredentials_SslCredentials{
					SslCredentials: &corev3.GrpcService_GoogleGrpc_SslCredentials{
						RootCerts: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: p.CACertFile}},
					},
				},
			},
			CallCredentials: []*corev3.GrpcService_GoogleGrpc_CallCredentials{{
				CredentialSpecifier: &corev3.GrpcService_GoogleGrpc_CallCredentials_FromPlugin{
					FromPlugin: &corev3.GrpcService_GoogleGrpc_CallCredentials_MetadataCredentialsFromPlugin{
						Name:       FileBasedMetadata,
						ConfigType: &corev3.GrpcService_GoogleGrpc_CallCredentials_MetadataCredentialsFromPlugin_TypedConfig{TypedConfig: plugin},
					},
				},
			}},
			CredentialsFactoryName: FileBasedMetadata,
		}},
	}, nil
}

func (p Params) adsCluster() (*clusterv3.Cluster, error) {
	tlsCtx, err := anypb.New(&tlsv3.UpstreamTlsContext{
		Sni: sni(p.XDSHost),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: []string{"h2"},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa:                 &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: p.CACertFile}},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{ServerSANMatcher(p.XDSHost)},
			}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("envoybootstrap: packing the xDS TLS context: %w", err)
	}
	h2opts := &httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	}
	h2, err := anypb.New(h2opts)
	if err != nil {
		return nil, fmt.Errorf("envoybootstrap: packing HTTP/2 options: %w", err)
	}
	discovery := clusterv3.Cluster_STRICT_DNS
	if net.ParseIP(p.XDSHost) != nil {
		discovery = clusterv3.Cluster_STATIC
	}
	return &clusterv3.Cluster{
		Name:                 ADSClusterName,
		ConnectTimeout:       durationpb.New(5e9),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			string(h2opts.ProtoReflect().Descriptor().FullName()): h2,
		},
		TransportSocket: &corev3.TransportSocket{Name: wellknown.TransportSocketTls, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tlsCtx}},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: ADSClusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(p.XDSHost, p.XDSPort)}},
			}}}},
		},
	}, nil
}

// Marshal renders a bootstrap as indented JSON (Envoy reads .json files).
func Marshal(b *bootstrapv3.Bootstrap) ([]byte, error) {
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("envoybootstrap: marshalling the bootstrap: %w", err)
	}
	return out, nil
}

// Parse decodes a bootstrap (protojson) and validates it; unknown fields
// are refused.
func Parse(data []byte) (*bootstrapv3.Bootstrap, error) {
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("envoybootstrap: decoding the bootstrap: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoybootstrap: the bootstrap is invalid: %w", err)
	}
	if err := validateAnys(&b); err != nil {
		return nil, err
	}
	return &b, nil
}

// validateAnys validates the messages packed in the ADS service and static
// clusters (ValidateAll does not look inside Any).
func validateAnys(b *bootstrapv3.Bootstrap) error {
	type validator interface{ ValidateAll() error }
	var anys []*anypb.Any
	for _, s := range b.GetDynamicResources().GetAdsConfig().GetGrpcServices() {
		for _, cc := range s.GetGoogleGrpc().GetCallCredentials() {
			if a := cc.GetFromPlugin().GetTypedConfig(); a != nil {
				anys = append(anys, a)
			}
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if a := c.GetTransportSocket().GetTypedConfig(); a != nil {
			anys = append(anys, a)
		}
		for _, a := range c.GetTypedExtensionProtocolOptions() {
			anys = append(anys, a)
		}
	}
	for _, a := range anys {
		m, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("envoybootstrap: unpacking %s: %w", a.GetTypeUrl(), err)
		}
		if v, ok := m.(validator); ok {
			if err := v.ValidateAll(); err != nil {
				return fmt.Errorf("envoybootstrap: invalid %s: %w", a.GetTypeUrl(), err)
			}
		}
	}
	return nil
}

// sni returns host for TLS SNI, or "" for an IP address (RFC 6066 forbids
// literal IP addresses in SNI).
func sni(host string) string {
	if _, ok := hostIP(host); ok {
		return ""
	}
	return dnsName(host)
}

// ServerSANMatcher is the check Envoy applies to the control plane's
// certificate on the ADS connection, on top of the chain: the certificate
// must carry host, the xDS host the agent reached the CP by, as an
// IP_ADDRESS SAN when host is an IP address, else as a DNS SAN (exact,
// case-insensitive; Envoy lets a wildcard SAN such as *.example.com match
// it, like any TLS client). Without it any certificate from the trusted
// CAs — the system roots when no CA file is given — would receive the
// dataplane token and could serve configuration.
func ServerSANMatcher(host string) *tlsv3.SubjectAltNameMatcher {
	if ip, ok := hostIP(host); ok {
		return &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: ip.String()}},
		}
	}
	return &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: dnsName(host)}, IgnoreCase: true},
	}
}

// hostIP parses host as an IP address (a zone, which no certificate
// carries, is dropped; an IPv4-mapped IPv6 address is its IPv4 form, as
// certificates and Envoy write it).
func hostIP(host string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.WithZone("").Unmap(), true
}

// dnsName is host as certificates and SNI write it: lower case, without a
// trailing dot.
func dnsName(host string) string {
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
