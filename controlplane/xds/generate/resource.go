// Package generate computes the Envoy resources of every dataplane
// (listeners, clusters, endpoints, secrets and filter configurations) from
// the stored state of its mesh. It is pure: no store, no clock, no
// network. Mesh-wide resources (service clusters, endpoints, VIP
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
	golangv3 "github.com/envoyproxy/go-control-plane/contrib/envoy/extensions/filters/http/golang/v3alpha"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Types lists the type URLs of the resources a dataplane receives, in the
// order Envoy applies them.
var Types = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.SecretType, resourcev3.ExtensionConfigType}

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
	// wasmRuntime is the Wasm runtime Envoy runs the filter in.
	wasmRuntime = "envoy.wasm.runtime.v8"
)

// Envoy extension names that go-control-plane's wellknown does not list.
const (
	httpLocalRateLimitFilter = "envoy.filters.http.local_ratelimit"
	networkLocalRateLimit    = "envoy.filters.network.local_ratelimit"
	retryPreviousHosts       = "envoy.retry_host_predicates.previous_hosts"
	retryPreviousPriorities  = "envoy.retry_priorities.previous_priorities"
	accessLogFile            = "envoy.access_loggers.file"
	accessLogOpenTelemetry   = "envoy.access_loggers.open_telemetry"
)

// WasmConfigType and GoConfigType are the type URLs of the filter's
// configuration in its two forms (go-control-plane names neither).
var (
	WasmConfigType = TypeURL(&wasmfilterv3.Wasm{})
	GoConfigType   = TypeURL(&golangv3.Config{})
)

// TypeURL is the type URL of m's message type, as packed in an Any.
func TypeURL(m proto.Message) string { return resourcev3.APITypePrefix + protoName(m) }

// protoName is the full name of m's message type.
func protoName(m proto.Message) string { return string(m.ProtoReflect().Descriptor().FullName()) }

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
			return nil, fmt.Errorf("generate: invalid %s: %w", protoName(m), err)
		}
	}
	b, err := deterministic.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("generate: marshalling %s: %w", protoName(m), err)
	}
	return &anypb.Any{TypeUrl: TypeURL(m), Value: b}, nil
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
