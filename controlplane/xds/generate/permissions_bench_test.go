package generate

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// permMesh is a mesh of dps dataplanes over services HTTP services, the
// even dataplanes carrying team: a; each service svc-i is protected by a
// permission admitting svc-(i+1), and one mesh-wide permission denies
// team b, in the SPIFFE-ID form or in Kuma's form.
func permMesh(tb testing.TB, dps, services int, kuma bool) *Input {
	in := &Input{Mesh: &resource.Mesh{Meta: resource.Meta{Type: resource.KindMesh, Name: "default"}}, Online: map[string]bool{}, VIPs: map[string]netip.Addr{}}
	for i := range dps {
		team := "a"
		if i%2 == 1 {
			team = "b"
		}
		in.Dataplanes = append(in.Dataplanes, &resource.Dataplane{
			Meta: resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: fmt.Sprintf("dp-%05d", i)},
			Networking: resource.Networking{Address: "10.0.0.1", Inbound: []resource.Inbound{{Port: 15000, Tags: map[string]string{
				resource.TagService: fmt.Sprintf("svc-%04d", i%services), resource.TagProtocol: "http", "team": team}}}},
		})
	}
	if kuma {
		in.Permissions = append(in.Permissions, mtp(tb, "mesh", `{"from":[{"targetRef":{"kind":"MeshSubset","tags":{"team":"b"}},"default":{"action":"Deny"}}]}`))
	} else {
		in.Permissions = append(in.Permissions, mtp(tb, "mesh", `{"from":[{"spiffeID":{"type":"Prefix","value":"spiffe://default.mesh.local/ns/b/"},"action":"Deny"}]}`))
	}
	for i := range services {
		svc, caller := fmt.Sprintf("svc-%04d", i), fmt.Sprintf("svc-%04d", (i+1)%services)
		from := `{"targetRef":{"kind":"MeshService","name":"` + caller + `"},"default":{"action":"Allow"}}`
		if !kuma {
			from = `{"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/` + caller + `"},"action":"Allow"}`
		}
		in.Permissions = append(in.Permissions, mtp(tb, svc, `{"targetRef":{"kind":"MeshService","name":"`+svc+`"},"from":[`+from+`]}`))
	}
	return in
}

// BenchmarkPermissions: resolving every service's permission set at one
// mesh build (10,000 dataplanes, 1,000 services, 1,001 permissions), the
// SPIFFE-ID form as the baseline and the same permissions in Kuma's form
// (its mesh-wide MeshSubset entry names 500 identities: 500 Exact rules in
// each of the 1,000 services' rules).
func BenchmarkPermissions(b *testing.B) {
	for _, form := range []struct {
		name string
		kuma bool
	}{{"spiffe-form", false}, {"kuma-form", true}} {
		b.Run(form.name, func(b *testing.B) {
			in := permMesh(b, 10000, 1000, form.kuma)
			m, err := NewBuilder().Mesh(in)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				m.perms = map[string]permSet{}
				m.permissions(in)
			}
		})
	}
}
