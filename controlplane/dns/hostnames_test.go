package dns

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
)

// DesiredRecords gives each name to the first service that generates it
// and reports names outside the zone, names taken by another service and
// generators whose template fails.
func TestDesiredRecords(t *testing.T) {
	gen := func(name, template string) *resource.HostnameGenerator {
		return &resource.HostnameGenerator{Meta: resource.Meta{Name: name}, Spec: resource.HostnameGeneratorSpec{Template: template}}
	}
	gens := []*resource.HostnameGenerator{
		gen("shared", "shared.mesh.internal"),
		gen("broken", `{{ label "team" }}.mesh.internal`),
		gen("outside", "{{ .Name }}.example.org"),
	}
	svcs := []Service{
		{Mesh: "default", Name: "api", Protocol: resource.ProtocolHTTP},
		{Mesh: "default", Name: "web", Protocol: resource.ProtocolHTTP},
		{Mesh: "default", Name: "novip", Protocol: resource.ProtocolTCP},
	}
	api, web := netip.MustParseAddr("241.0.0.1"), netip.MustParseAddr("241.0.0.2")
	vips := map[vip.ServiceKey]netip.Addr{{Mesh: "default", Service: "api"}: api, {Mesh: "default", Service: "web"}: web}

	records, conflicts := DesiredRecords("mesh.internal", "", "mesh.internal.", svcs, vips, gens)
	wantRecords := []Record{
		{Name: "api.mesh.internal", VIP: api, Mesh: "default", Service: "api"},
		{Name: "shared.mesh.internal", VIP: api, Mesh: "default", Service: "api"},
		{Name: "web.mesh.internal", VIP: web, Mesh: "default", Service: "web"},
	}
	if !reflect.DeepEqual(records, wantRecords) {
		t.Errorf("records %+v, want %+v", records, wantRecords)
	}
	wantConflicts := []Conflict{
		{Name: "default/api", Reason: `dns: HostnameGenerator broken for service default/api: resource: hostname template: template: hostname:1:3: executing "hostname" at <label "team">: error calling label: service api has no label "team"`},
		{Name: "api.example.org", Reason: "not in hosted zone mesh.internal."},
		{Name: "default/web", Reason: `dns: HostnameGenerator broken for service default/web: resource: hostname template: template: hostname:1:3: executing "hostname" at <label "team">: error calling label: service web has no label "team"`},
		{Name: "web.example.org", Reason: "not in hosted zone mesh.internal."},
		{Name: "shared.mesh.internal", Reason: "also generated for default/api, which keeps it"},
	}
	if !reflect.DeepEqual(conflicts, wantConflicts) {
		t.Errorf("conflicts\n%+v\nwant\n%+v", conflicts, wantConflicts)
	}
}
