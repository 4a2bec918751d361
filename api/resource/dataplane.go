package resource

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Protocols a service may declare in kuma.io/protocol.
const (
	ProtocolHTTP  = "http"
	ProtocolHTTP2 = "http2"
	ProtocolGRPC  = "grpc"
	ProtocolTCP   = "tcp"
)

// Inbound states.
const (
	StateReady    = "Ready"
	StateNotReady = "NotReady"
)

// DefaultServiceAddress is where the app listens unless told otherwise.
const DefaultServiceAddress = "127.0.0.1"

// Dataplane is one sidecar (Kuma Universal form).
type Dataplane struct {
	Meta
	Networking Networking `json:"networking"`
	// Owner is set by the control plane (see Owner); nil for a Dataplane
	// an operator applied.
	Owner *Owner `json:"owner,omitempty"`
}

// Networking is where a dataplane listens and what it reaches.
type Networking struct {
	// Address is the task ENI address Envoy listens on for inbounds.
	Address string `json:"address"`
	// Inbound are the services this task serves.
	Inbound []Inbound `json:"inbound,omitempty"`
	// Outbound are explicit upstreams on 127.0.0.1:port (optional with
	// --bind-outbounds, which binds every reachable service's VIP).
	Outbound []Outbound `json:"outbound,omitempty"`
	// TransparentProxying carries Kuma's reachableServices (the rest of
	// Kuma's transparent-proxy settings do not apply on ECS).
	TransparentProxying *TransparentProxying `json:"transparentProxying,omitempty"`
	// Admin is Envoy's admin listener (on 127.0.0.1).
	Admin *Admin `json:"admin,omitempty"`
}

// Inbound is one served port.
type Inbound struct {
	// Port is where Envoy listens on the task address.
	Port int `json:"port"`
	// ServicePort is where the app listens (default: Port).
	ServicePort int `json:"servicePort,omitempty"`
	// ServiceAddress is the app's address (default 127.0.0.1).
	ServiceAddress string `json:"serviceAddress,omitempty"`
	// Tags: kuma.io/service (required), kuma.io/protocol (http, http2, grpc, tcp).
	Tags map[string]string `json:"tags"`
	// State is Ready (default) or NotReady; set by health sync and draining.
	State string `json:"state,omitempty"`
}

// Outbound is one explicit upstream.
type Outbound struct {
	// Address defaults to 127.0.0.1.
	Address string `json:"address,omitempty"`
	// Port is where the app dials.
	Port int `json:"port"`
	// Tags: kuma.io/service names the upstream.
	Tags map[string]string `json:"tags"`
}

// Admin is Envoy's admin endpoint.
type Admin struct {
	Port int `json:"port"`
}

// TransparentProxying is the part of Kuma's transparent-proxy settings
// ecsmesh reads.
type TransparentProxying struct {
	// ReachableServices, when set, are the only services (kuma.io/service)
	// the Dataplane may call: its outbound configuration holds nothing
	// else. An explicit empty list allows none.
	ReachableServices []string `json:"reachableServices,omitzero"`
}

// Reachable returns the Dataplane's reachableServices, nil when it sets
// none (every service).
func (d *Dataplane) Reachable() []string {
	if d.Networking.TransparentProxying == nil {
		return nil
	}
	return d.Networking.TransparentProxying.ReachableServices
}

// Service returns the inbound's kuma.io/service.
func (in *Inbound) Service() string { return in.Tags[TagService] }

// Protocol returns the inbound's protocol, defaulting to tcp like Kuma.
func (in *Inbound) Protocol() string {
	if p := in.Tags[TagProtocol]; p != "" {
		return p
	}
	return ProtocolTCP
}

// AppPort returns ServicePort, defaulted to Port.
func (in *Inbound) AppPort() int {
	if in.ServicePort != 0 {
		return in.ServicePort
	}
	return in.Port
}

// AppAddress returns ServiceAddress, defaulted.
func (in *Inbound) AppAddress() string {
	if in.ServiceAddress != "" {
		return in.ServiceAddress
	}
	return DefaultServiceAddress
}

// Ready reports whether the inbound takes traffic.
func (in *Inbound) Ready() bool { return in.State == "" || in.State == StateReady }

// Service returns the outbound's kuma.io/service.
func (o *Outbound) Service() string { return o.Tags[TagService] }

// ListenAddress returns Address, defaulted.
func (o *Outbound) ListenAddress() string {
	if o.Address != "" {
		return o.Address
	}
	return DefaultServiceAddress
}

// Services lists the distinct services of the inbounds, in order.
func (d *Dataplane) Services() []string {
	var out []string
	seen := map[string]bool{}
	for i := range d.Networking.Inbound {
		s := d.Networking.Inbound[i].Service()
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Workload returns the kuma.io/workload label, falling back to the first
// inbound's service, so that every Dataplane has a workload for its
// SPIFFE ID path.
func (d *Dataplane) Workload() string {
	if w := d.Labels[TagWorkload]; w != "" {
		return w
	}
	if s := d.Services(); len(s) > 0 {
		return s[0]
	}
	return ""
}

// Validate implements Object.
func (d *Dataplane) Validate() *validation.Error {
	verr := &validation.Error{}
	validateMeta(&d.Meta, ScopeMesh, verr)
	if w, ok := d.Labels[TagWorkload]; ok && !ValidServiceName(w) {
		verr.Add(validation.Root().Field("labels").Key(TagWorkload), "must be a name of letters, digits, '.', '_' or '-' (at most 63)")
	}
	p := validation.Root().Field("networking")
	if d.Networking.Address == "" {
		verr.Add(p.Field("address"), "must be set to the task's IP address")
	} else if _, err := netip.ParseAddr(d.Networking.Address); err != nil {
		verr.Add(p.Field("address"), fmt.Sprintf("must be an IP address, got %q", d.Networking.Address))
	}
	if len(d.Networking.Inbound) == 0 {
		verr.Add(p.Field("inbound"), "must have at least one inbound")
	}
	ports := map[int]int{}
	for i := range d.Networking.Inbound {
		in := &d.Networking.Inbound[i]
		ip := p.Field("inbound").Index(i)
		validatePort(ip.Field("port"), in.Port, true, verr)
		validatePort(ip.Field("servicePort"), in.ServicePort, false, verr)
		if in.ServiceAddress != "" {
			if _, err := netip.ParseAddr(in.ServiceAddress); err != nil {
				verr.Add(ip.Field("serviceAddress"), "must be an IP address")
			}
		}
		if prev, dup := ports[in.Port]; dup && in.Port != 0 {
			verr.Add(ip.Field("port"), fmt.Sprintf("duplicates networking.inbound[%d].port", prev))
		} else {
			ports[in.Port] = i
		}
		validateServiceTags(ip.Field("tags"), in.Tags, true, verr)
		switch in.State {
		case "", StateReady, StateNotReady:
		default:
			verr.Add(ip.Field("state"), "must be Ready or NotReady")
		}
	}
	outs := map[string]int{}
	for i := range d.Networking.Outbound {
		o := &d.Networking.Outbound[i]
		op := p.Field("outbound").Index(i)
		validatePort(op.Field("port"), o.Port, true, verr)
		if o.Address != "" {
			if _, err := netip.ParseAddr(o.Address); err != nil {
				verr.Add(op.Field("address"), "must be an IP address")
			}
		}
		k := fmt.Sprintf("%s:%d", o.ListenAddress(), o.Port)
		if prev, dup := outs[k]; dup {
			verr.Add(op.Field("port"), fmt.Sprintf("duplicates networking.outbound[%d] (%s)", prev, k))
		} else {
			outs[k] = i
		}
		validateServiceTags(op.Field("tags"), o.Tags, false, verr)
	}
	if tp := d.Networking.TransparentProxying; tp != nil {
		seen := map[string]int{}
		for i, svc := range tp.ReachableServices {
			rp := p.Field("transparentProxying").Field("reachableServices").Index(i)
			switch {
			case !ValidServiceName(svc):
				verr.Add(rp, "must be a kuma.io/service value: 1-63 letters, digits, '.', '_' or '-'")
			default:
				if prev, dup := seen[svc]; dup {
					verr.Add(rp, fmt.Sprintf("duplicates reachableServices[%d]", prev))
				}
				seen[svc] = i
			}
		}
	}
	if d.Networking.Admin != nil {
		ap := p.Field("admin").Field("port")
		validatePort(ap, d.Networking.Admin.Port, true, verr)
		if i, clash := ports[d.Networking.Admin.Port]; clash && d.Networking.Admin.Port != 0 {
			verr.Add(ap, fmt.Sprintf("clashes with networking.inbound[%d].port", i))
		}
	}
	return verr
}

func validatePort(p validation.Path, port int, required bool, verr *validation.Error) {
	if port == 0 && !required {
		return
	}
	if port < 1 || port > 65535 {
		verr.Add(p, "must be in 1..65535")
	}
}

func validateServiceTags(p validation.Path, tags map[string]string, inbound bool, verr *validation.Error) {
	svc, ok := tags[TagService]
	switch {
	case !ok || svc == "":
		verr.Add(p.Key(TagService), "must be set")
	case !ValidServiceName(svc):
		verr.Add(p.Key(TagService), "must be 1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit (it becomes a DNS name)")
	}
	if proto, ok := tags[TagProtocol]; ok && inbound {
		switch proto {
		case ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC, ProtocolTCP:
		default:
			verr.Add(p.Key(TagProtocol), "must be one of http, http2, grpc, tcp")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if k == "" {
			verr.Add(p.Key(k), "key must not be empty")
		} else if tags[k] == "" {
			verr.Add(p.Key(k), "value must not be empty")
		}
	}
}
