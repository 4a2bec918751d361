package adsclient

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Types lists the type URLs the client subscribes to, in Envoy's order.
var Types = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.SecretType, resourcev3.ExtensionConfigType}

// Full names of the messages that refer to other resources.
var (
	clusterName         = protoName(&clusterv3.Cluster{})
	routeActionName     = protoName(&routev3.RouteAction{})
	tcpProxyName        = protoName(&tcpproxyv3.TcpProxy{})
	sdsSecretConfigName = protoName(&tlsv3.SdsSecretConfig{})
	httpFilterName      = protoName(&hcmv3.HttpFilter{})
	anyName             = protoName(&anypb.Any{})
)

func protoName(m proto.Message) protoreflect.FullName {
	return m.ProtoReflect().Descriptor().FullName()
}

// refs are the names resources refer to, by the type that holds them.
type refs map[string]map[string]bool

func (r refs) add(typ, name string) {
	if name == "" {
		return
	}
	if r[typ] == nil {
		r[typ] = map[string]bool{}
	}
	r[typ][name] = true
}

// check unpacks a, validates it and every Any inside it (ValidateAll) and
// collects what it refers to: EDS names of EDS clusters, clusters of
// routes and tcp_proxy, SDS secrets and ECDS filter names.
func check(a *anypb.Any, out refs) error {
	m, err := a.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", a.GetTypeUrl(), err)
	}
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
		}
	}
	return walk(m.ProtoReflect(), out)
}

func str(m protoreflect.Message, field protoreflect.Name) string {
	f := m.Descriptor().Fields().ByName(field)
	if f == nil || !m.Has(f) {
		return ""
	}
	return m.Get(f).String()
}

func walk(m protoreflect.Message, out refs) error {
	switch m.Descriptor().FullName() {
	case anyName:
		return check(m.Interface().(*anypb.Any), out)
	case clusterName:
		if f := m.Descriptor().Fields().ByName("type"); m.Get(f).Enum() == protoreflect.EnumNumber(clusterv3.Cluster_EDS) {
			name := str(m, "name")
			if eds := m.Get(m.Descriptor().Fields().ByName("eds_cluster_config")).Message(); eds.IsValid() {
				if sn := str(eds, "service_name"); sn != "" {
					name = sn
				}
			}
			out.add(resourcev3.EndpointType, name)
		}
	case routeActionName, tcpProxyName:
		out.add(resourcev3.ClusterType, str(m, "cluster"))
	case sdsSecretConfigName:
		out.add(resourcev3.SecretType, str(m, "name"))
	case httpFilterName:
		if f := m.Descriptor().Fields().ByName("config_discovery"); m.Has(f) {
			out.add(resourcev3.ExtensionConfigType, str(m, "name"))
		}
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = walk(v.List().Get(i).Message(), out)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = walk(mv.Message(), out)
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			err = walk(v.Message(), out)
		}
		return err == nil
	})
	return err
}

// Unpack returns the message packed in a.
func Unpack(a *anypb.Any) (proto.Message, error) { return a.UnmarshalNew() }
