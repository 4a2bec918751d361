package resource

import (
	"fmt"
	"sort"
	"strings"
)

// Service is one service of a mesh, as HostnameGenerator selectors see it:
// the distinct kuma.io/service of its Dataplanes' inbounds.
type Service struct {
	Mesh     string
	Name     string
	Protocol string
}

// Labels returns the labels HostnameGenerator selectors match against:
// kuma.io/service, kuma.io/mesh and kuma.io/protocol.
func (s Service) Labels() map[string]string {
	return map[string]string{TagService: s.Name, TagMesh: s.Mesh, TagProtocol: s.Protocol}
}

// Data returns what a hostname template sees of the service.
func (s Service) Data() ServiceData {
	return ServiceData{DisplayName: s.Name, Name: s.Name, Mesh: s.Mesh, Labels: s.Labels()}
}

// HostnameError is a HostnameGenerator whose template fails for a
// service: that generator contributes no name to the service.
type HostnameError struct {
	// Generator is the HostnameGenerator's name.
	Generator string
	// Service is the service the template failed for.
	Service Service
	// Err is the template's error.
	Err error
}

// Error implements error.
func (e *HostnameError) Error() string { return "resource: " + e.Reason() }

// Reason describes the failure without the package prefix, for status
// reports: "HostnameGenerator <name> for service <mesh>/<service>: <error>".
func (e *HostnameError) Reason() string {
	return fmt.Sprintf("HostnameGenerator %s for service %s/%s: %v", e.Generator, e.Service.Mesh, e.Service.Name, e.Err)
}

// Unwrap returns the template's error.
func (e *HostnameError) Unwrap() error { return e.Err }

// Hostnames returns a service's names: <service>.<domain> first (when
// domain is not empty), then every selecting generator's, sorted by
// generator name, without duplicates. zoneID, when not empty, keeps only
// the generators that publish into that Route53 zone (see
// PublishesInto). A generator whose template fails for this service is
// reported in errs and contributes nothing.
func Hostnames(domain, zoneID string, svc Service, gens []*HostnameGenerator) (names []string, errs []*HostnameError) {
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if domain != "" {
		add(NormalizeHostname(svc.Name + "." + domain))
	}
	sorted := append([]*HostnameGenerator(nil), gens...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	data := svc.Data()
	for _, g := range sorted {
		if !g.PublishesInto(zoneID) || !g.Selects(data.Labels) {
			continue
		}
		n, err := g.Hostname(data)
		if err != nil {
			errs = append(errs, &HostnameError{Generator: g.Name, Service: svc, Err: err})
			continue
		}
		add(n)
	}
	return names, errs
}

// PublishesInto reports whether the generator publishes into the Route53
// zone zoneID: a generator without extension publishes into the control
// plane's zone, one with a Route53 extension only into the zone it names.
// An empty zoneID matches every generator.
func (h *HostnameGenerator) PublishesInto(zoneID string) bool {
	ext := h.Spec.Extension
	if ext == nil || ext.Config == nil || zoneID == "" {
		return true
	}
	return NormalizeZoneID(ext.Config.HostedZoneID) == NormalizeZoneID(zoneID)
}

// NormalizeHostname lower-cases a DNS name and drops its trailing dot.
func NormalizeHostname(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// NormalizeZoneID drops the "/hostedzone/" prefix Route53 puts on IDs.
func NormalizeZoneID(id string) string { return strings.TrimPrefix(id, "/hostedzone/") }
