// Package generate computes the Envoy resources of every dataplane (its
// xDS configuration) from the stored state of its mesh. It is pure: no store, no clock,
// no network. Mesh-wide resources (service clusters, endpoints, VIP
// listeners, the trust bundle) are built once per mesh and shared by every
// dataplane; only what differs per dataplane (inbound listeners, explicit
// outbound listeners, local app clusters, filter configurations, the
// identity certificate) is built per dataplane.
//
// Every resource is validated with ValidateAll (each packed Any first, on
// its own, since ValidateAll does not look inside Any) and marshalled
// deterministically, so equal inputs give equal bytes and equal versions on
// every CP replica.
package generate

import (
	"encoding/hex"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs of the resources a dataplane receives.
const (
	ListenerType  = "type.googleapis.com/envoy.config.listener.v3.Listener"
	ClusterType   = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType  = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	SecretType    = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
	ExtensionType = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
)

// Types lists the type URLs in the order Envoy applies them.
var Types = []string{ClusterType, EndpointType, ListenerType, SecretType, ExtensionType}

// Names of resources shared by convention between the generator, Envoy's
// bootstrap and the filter.
const (
	// IdentitySecret is the SDS secret holding the dataplane's X.509 SVID.
	IdentitySecret = "identity"
	// TrustBundleSecret is the SDS secret holding the mesh's trust bundle.
	TrustBundleSecret = "trust-bundle"
	// OutboundFilter is the ECDS name of the outbound filter configuration.
	OutboundFilter = "ecsmesh-outbound"
	// InboundFilterPrefix + port is the ECDS name of an inbound listener's
	// filter configuration.
	InboundFilterPrefix = "ecsmesh-inbound:"
	// PluginName is the filter's name in both forms (root_id, plugin_name).
	PluginName = "ecsmesh"
	// WasmConfigType and GoConfigType are the filter's type URLs.
	WasmConfigType = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	GoConfigType   = "type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.Config"
)

// Resource is one Envoy resource, packed and versioned. A Resource is
// immutable once built and may be shared by any number of dataplanes and
// streams.
type Resource struct {
	// Name is the resource name (listener, cluster, secret... name).
	Name string
	// Version is a hash of the packed bytes: equal content, equal version.
	Version string
	// Any is the packed resource. Nil when the resource is rendered on
	// demand (see Render).
	Any *anypb.Any
	// render builds Any on demand for large per-dataplane resources that
	// are not worth keeping in memory (the outbound filter configuration).
	render func() (*anypb.Any, error)
}

// Packed returns the packed resource, rendering it when it is built on
// demand.
func (r *Resource) Packed() (*anypb.Any, error) {
	if r.Any != nil {
		return r.Any, nil
	}
	if r.render == nil {
		return nil, fmt.Errorf("generate: resource %s has no content", r.Name)
	}
	return r.render()
}

// validator is implemented by every generated Envoy message.
type validator interface {
	ValidateAll() error
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// pack validates m and packs it deterministically into an Any.
func pack(m proto.Message) (*anypb.Any, error) {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return nil, fmt.Errorf("generate: invalid %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		}
	}
	b, err := deterministic.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("generate: marshalling %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}, nil
}

// newResource validates and packs a top-level resource.
func newResource(name string, m proto.Message) (*Resource, error) {
	a, err := pack(m)
	if err != nil {
		return nil, fmt.Errorf("%w (resource %s)", err, name)
	}
	return &Resource{Name: name, Version: hash(a.Value), Any: a}, nil
}

// hash returns a short hex content hash.
func hash(parts ...[]byte) string {
	d := xxhash.New()
	for _, p := range parts {
		_, _ = d.Write(p)
		_, _ = d.Write([]byte{0})
	}
	var b [8]byte
	sum := d.Sum64()
	for i := range b {
		b[i] = byte(sum >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}

// HashStrings hashes strings into a short version string.
func HashStrings(parts ...string) string {
	bs := make([][]byte, len(parts))
	for i, p := range parts {
		bs[i] = []byte(p)
	}
	return hash(bs...)
}
