package dns

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/api/validation"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
)

// Service is one service of a mesh, as HostnameGenerator selectors see it
// (resource.Service).
type Service = resource.Service

// serviceKey returns the service's VIP key.
func serviceKey(s Service) vip.ServiceKey { return vip.ServiceKey{Mesh: s.Mesh, Service: s.Name} }

// Record is one desired A record: hostname → the service's VIP.
type Record struct {
	Name    string     `json:"name"`
	VIP     netip.Addr `json:"vip"`
	Mesh    string     `json:"mesh"`
	Service string     `json:"service"`
}

// Services returns every service in the store: the distinct kuma.io/service
// of the Dataplanes' inbounds, per mesh, sorted. Names used only as
// outbounds are not services (see package vip). The protocol is the first
// inbound's.
func Services(ctx context.Context, st store.Store) ([]Service, error) {
	recs, err := st.List(ctx, resource.KindDataplane, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("dns: listing dataplanes: %w", err)
	}
	seen := map[vip.ServiceKey]bool{}
	var out []Service
	for _, r := range recs {
		obj, err := resource.Unmarshal(resource.KindDataplane, r.Spec)
		if err != nil {
			return nil, fmt.Errorf("dns: reading %s: %w", r.Key, err)
		}
		dp := obj.(*resource.Dataplane)
		for i := range dp.Networking.Inbound {
			in := &dp.Networking.Inbound[i]
			k := vip.ServiceKey{Mesh: r.Mesh, Service: in.Service()}
			if k.Service == "" || seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, Service{Mesh: r.Mesh, Name: k.Service, Protocol: in.Protocol()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Mesh != out[j].Mesh {
			return out[i].Mesh < out[j].Mesh
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Generators returns the stored HostnameGenerators.
func Generators(ctx context.Context, st store.Store) ([]*resource.HostnameGenerator, error) {
	recs, err := st.List(ctx, resource.KindHostnameGenerator, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("dns: listing hostname generators: %w", err)
	}
	out := make([]*resource.HostnameGenerator, 0, len(recs))
	for _, r := range recs {
		obj, err := resource.Unmarshal(resource.KindHostnameGenerator, r.Spec)
		if err != nil {
			return nil, fmt.Errorf("dns: reading %s: %w", r.Key, err)
		}
		out = append(out, obj.(*resource.HostnameGenerator))
	}
	return out, nil
}

// InZone reports whether name lies in the zone named zone (both
// normalized); an empty zone holds every name.
func InZone(name, zone string) bool {
	zone = NormalizeName(zone)
	return zone == "" || name == zone || strings.HasSuffix(name, "."+zone)
}

// DesiredRecords computes the A records for services that have a VIP.
// Each name goes to one service: the first by (mesh, service) order wins
// and the others are reported as conflicts, as are names outside zone
// (when zone is not empty) and template failures.
func DesiredRecords(domain, zoneID, zone string, services []Service, vips map[vip.ServiceKey]netip.Addr, gens []*resource.HostnameGenerator) ([]Record, []Conflict) {
	var out []Record
	var conflicts []Conflict
	owner := map[string]vip.ServiceKey{}
	for _, s := range services {
		v, ok := vips[serviceKey(s)]
		if !ok {
			continue
		}
		names, errs := resource.Hostnames(domain, zoneID, s, gens)
		for _, err := range errs {
			conflicts = append(conflicts, Conflict{Name: s.Mesh + "/" + s.Name, Reason: "dns: " + err.Reason()})
		}
		for _, n := range names {
			if !InZone(n, zone) {
				conflicts = append(conflicts, Conflict{Name: n, Reason: fmt.Sprintf("not in hosted zone %s", zone)})
				continue
			}
			if prev, taken := owner[n]; taken {
				conflicts = append(conflicts, Conflict{Name: n, Reason: fmt.Sprintf("also generated for %s/%s, which keeps it", prev.Mesh, prev.Service)})
				continue
			}
			owner[n] = serviceKey(s)
			out = append(out, Record{Name: n, VIP: v, Mesh: s.Mesh, Service: s.Name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, conflicts
}

// ValidateGenerator renders gen's template for every stored service it
// selects and returns a validation error (at spec.template) for each one
// that fails, so that apply refuses a generator that cannot produce names.
func ValidateGenerator(ctx context.Context, st store.Store, gen *resource.HostnameGenerator) (*validation.Error, error) {
	svcs, err := Services(ctx, st)
	if err != nil {
		return nil, err
	}
	return CheckGenerator(gen, svcs), nil
}

// CheckGenerator is ValidateGenerator over a given list of services.
func CheckGenerator(gen *resource.HostnameGenerator, services []Service) *validation.Error {
	verr := &validation.Error{}
	p := validation.Root().Field("spec").Field("template")
	for _, s := range services {
		data := s.Data()
		if !gen.Selects(data.Labels) {
			continue
		}
		if _, err := gen.Hostname(data); err != nil {
			verr.Add(p, fmt.Sprintf("fails for service %s/%s: %s", s.Mesh, s.Name, strings.TrimPrefix(err.Error(), "resource: hostname template: ")))
		}
	}
	if verr.Empty() {
		return nil
	}
	return verr
}
