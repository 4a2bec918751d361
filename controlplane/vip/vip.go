// Package vip hands every service of every mesh a loopback virtual IP (VIP)
// from the configured ranges (KUMA_IPAM_MESH_SERVICE_CIDR, then the legacy
// KUMA_DNS_SERVER_CIDR). The sidecar listens on the VIP and the service's
// hostnames resolve to it.
//
// Allocations are store records, so they survive restarts and are shared by
// every CP replica:
//
//   - kind "ServiceVIP", mesh = the service's mesh, name = the service:
//     {"vip":"127.1.0.5"}. One per service; store.Create makes it unique.
//   - kind "VIPReservation", global, name = the IP: {"mesh":..,"service":..,
//     "state":"active"|"retired"}. One per IP ever handed out; store.Create
//     makes an IP go to at most one service even when two replicas allocate
//     at once. A deleted service's reservation is kept, marked retired, so
//     its IP is not reused until every other IP of the ranges was used; then
//     the retired IPs are reused, the longest-retired first.
//
// A service and its reservation are always written in one atomic batch.
//
// Which services get a VIP: the distinct kuma.io/service of the inbounds of
// the mesh's Dataplanes. A name that appears only in some Dataplane's
// outbounds gets none: nobody serves it, so it has no endpoints to route to,
// and a typo must not consume addresses or publish DNS names. It gets its VIP
// as soon as one Dataplane serves it.
//
// VIPs are unique across meshes: the ranges are one loopback address space
// shared by every sidecar on a host.
package vip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Store record kinds owned by this package.
const (
	// KindServiceVIP is one service's VIP (mesh-scoped, name = service).
	KindServiceVIP = "ServiceVIP"
	// KindReservation is one handed-out IP (global, name = the IP).
	KindReservation = "VIPReservation"
)

// Reservation states.
const (
	StateActive  = "active"
	StateRetired = "retired"
)

// ErrExhausted is returned when every address of the ranges is held by a
// live service.
var ErrExhausted = errors.New("vip: every address of the VIP ranges is in use; widen KUMA_IPAM_MESH_SERVICE_CIDR")

// serviceVIP is the document of a ServiceVIP record.
type serviceVIP struct {
	VIP string `json:"vip"`
}

// reservation is the document of a VIPReservation record.
type reservation struct {
	Mesh    string `json:"mesh"`
	Service string `json:"service"`
	State   string `json:"state"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("vip: marshalling %T: %v", v, err)) // plain structs of strings always marshal
	}
	return b
}

func decodeVIP(spec []byte) (netip.Addr, error) {
	var s serviceVIP
	if err := json.Unmarshal(spec, &s); err != nil {
		return netip.Addr{}, fmt.Errorf("vip: decoding ServiceVIP: %w", err)
	}
	a, err := netip.ParseAddr(s.VIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vip: decoding ServiceVIP: %w", err)
	}
	return a, nil
}

// ParseRanges parses comma-separated CIDRs as found in the environment
// (KUMA_IPAM_MESH_SERVICE_CIDR, KUMA_DNS_SERVER_CIDR). Empty items are
// ignored.
func ParseRanges(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("vip: parsing range %q: %w", item, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// loopback is 127.0.0.0/8.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// CheckLoopback returns an error naming variable unless every range lies in
// 127.0.0.0/8, as Route53 VIPs must: the sidecar listens on them inside
// the task (Fargate has no transparent proxy). It is the rule
// controlplane/config applies to the ranges it reads, for callers that
// build ranges themselves.
func CheckLoopback(variable string, ranges []netip.Prefix) error {
	for _, p := range ranges {
		p = p.Masked()
		if !p.Addr().Is4() || p.Bits() < 8 || !loopback.Contains(p.Addr()) {
			return fmt.Errorf("vip: %s: range %s must lie in 127.0.0.0/8 when the Route53 writer is on (the sidecar listens on the VIPs inside the task)", variable, p)
		}
	}
	return nil
}

// usable reports whether a may be handed out from p: not the network or
// broadcast address of an IPv4 range wider than /31, and never 127.0.0.1,
// where the apps themselves listen.
func usable(p netip.Prefix, a netip.Addr) bool {
	if !p.Contains(a) {
		return false
	}
	if a == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return false
	}
	if a.Is4() && p.Bits() < 31 {
		if a == p.Masked().Addr() || a == lastAddr(p) {
			return false
		}
	}
	return true
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}
