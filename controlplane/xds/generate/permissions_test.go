package generate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

const (
	idWeb   = "spiffe://default.mesh.local/workload/web"
	idAPI   = "spiffe://default.mesh.local/workload/api"
	idRedis = "spiffe://default.mesh.local/workload/redis"
	idMesh  = "spiffe://default.mesh.local/"
)

// mtp decodes a MeshTrafficPermission named name with spec (JSON).
func mtp(t testing.TB, name, spec string) *resource.MeshTrafficPermission {
	t.Helper()
	p := decode[*resource.MeshTrafficPermission](t, "MeshTrafficPermission", `{"mesh":"default","name":"`+name+`","spec":`+spec+`}`)
	if v := p.Validate(); !v.Empty() {
		t.Fatalf("permission %s does not validate: %v", name, v)
	}
	return p
}

// permDP is a dataplane of service svc with workload wl and extra inbound
// tags.
func permDP(t testing.TB, name, svc, wl, addr, tags string) *resource.Dataplane {
	t.Helper()
	return decode[*resource.Dataplane](t, "Dataplane", `{"mesh":"default","name":"`+name+`","labels":{"kuma.io/workload":"`+wl+`"},
	  "networking":{"address":"`+addr+`","inbound":[{"port":15000,"servicePort":8080,"tags":{"kuma.io/service":"`+svc+`","kuma.io/protocol":"http"`+tags+`}}]}}`)
}

func rule(typ, value, action string) filter.Permission {
	return filter.Permission{Type: typ, Value: value, Action: action}
}

func fmtPerms(ps permSet) string {
	var sb strings.Builder
	sb.WriteString("default " + ps.deflt)
	for _, p := range ps.perms {
		fmt.Fprintf(&sb, "; %s %s %s", p.Action, p.Type, p.Value)
	}
	return sb.String()
}

// TestKumaPermissions: Kuma-form entries resolve to the SPIFFE IDs of the
// dataplanes they name, with Kuma's precedence (the more specific entry
// wins; Deny on ties) inside the allow-list / deny-list model.
func TestKumaPermissions(t *testing.T) {
	const toAPI = `{"targetRef":{"kind":"MeshService","name":"api"},"from":[`
	tests := []struct {
		name  string
		perms []string // name=spec
		extra string   // extra inbound tags of web-1
		want  permSet
	}{
		{"MeshService caller resolves to its identities", []string{"a=" + toAPI + `{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idWeb, "Allow")}}},
		{"Mesh caller is the trust domain prefix", []string{"a=" + toAPI + `{"targetRef":{"kind":"Mesh"},"default":{"action":"Allow"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Prefix", idMesh, "Allow")}}},
		{"Mesh Deny alone is a Prefix Deny", []string{"a=" + toAPI + `{"targetRef":{"kind":"Mesh"},"default":{"action":"Deny"}}]}`}, "",
			permSet{deflt: filter.DefaultAllowMesh, perms: []filter.Permission{rule("Prefix", idMesh, "Deny")}}},
		{"a more specific Allow beats the Mesh Deny: allow-list", []string{"a=" + toAPI +
			`{"targetRef":{"kind":"Mesh"},"default":{"action":"Deny"}},{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idWeb, "Allow")}}},
		{"a more specific Deny beats the Mesh Allow", []string{"a=" + toAPI +
			`{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Deny"}},{"targetRef":{"kind":"Mesh"},"default":{"action":"Allow"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idWeb, "Deny"), rule("Prefix", idMesh, "Allow")}}},
		{"Deny beats Allow at equal specificity, across permissions", []string{
			"a=" + toAPI + `{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`,
			"b=" + toAPI + `{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Deny"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idWeb, "Deny")}}},
		{"a service-level permission beats a mesh-level one at equal from kind", []string{
			"a=" + toAPI + `{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`,
			"b=" + `{"targetRef":{"kind":"Mesh"},"from":[{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Deny"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idWeb, "Allow")}}},
		{"a service-level Mesh Deny beats a mesh-level Mesh Allow", []string{
			"a=" + toAPI + `{"targetRef":{"kind":"Mesh"},"default":{"action":"Deny"}}]}`,
			"b=" + `{"targetRef":{"kind":"Mesh"},"from":[{"targetRef":{"kind":"Mesh"},"default":{"action":"Allow"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Prefix", idMesh, "Deny")}}},
		{"a mesh-level Mesh Deny, a service-level Allow for web: allow-list", []string{
			"a=" + toAPI + `{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`,
			"b=" + `{"targetRef":{"kind":"Mesh"},"from":[{"targetRef":{"kind":"Mesh"},"default":{"action":"Deny"}},{"targetRef":{"kind":"MeshService","name":"redis"},"default":{"action":"Deny"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idRedis, "Deny"), rule("Exact", idWeb, "Allow")}}},
		{"SPIFFE-ID form Deny beats a Kuma Allow", []string{
			"a=" + toAPI + `{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`,
			"b=" + toAPI + `{"spiffeID":{"type":"Exact","value":"` + idWeb + `"},"action":"Deny"}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idWeb, "Deny"), rule("Exact", idWeb, "Allow")}}},
		{"MeshSubset tags name the dataplanes whose inbound carries them", []string{"a=" + toAPI + `{"targetRef":{"kind":"MeshSubset","tags":{"team":"a"}},"default":{"action":"Deny"}}]}`}, `,"team":"a"`,
			permSet{deflt: filter.DefaultAllowMesh, perms: []filter.Permission{rule("Exact", idWeb, "Deny")}}},
		{"MeshSubset matching nobody names nobody", []string{"a=" + toAPI + `{"targetRef":{"kind":"MeshSubset","tags":{"team":"b"}},"default":{"action":"Deny"}}]}`}, `,"team":"a"`,
			permSet{deflt: filter.DefaultAllowMesh}},
		{"MeshServiceSubset: the service's dataplanes with the tags", []string{"a=" + toAPI +
			`{"targetRef":{"kind":"MeshServiceSubset","name":"web","tags":{"version":"v2"}},"default":{"action":"AllowWithShadowDeny"}},` +
			`{"targetRef":{"kind":"MeshServiceSubset","name":"redis","tags":{"version":"v2"}},"default":{"action":"Allow"}}]}`}, `,"version":"v2"`,
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idWeb, "AllowWithShadowDeny")}}},
		{"an Allow from a service without dataplanes still makes an allow-list", []string{"a=" + toAPI + `{"targetRef":{"kind":"MeshService","name":"billing"},"default":{"action":"Allow"}}]}`}, "",
			permSet{deflt: filter.ActionDeny}},
		{"a mesh-wide permission with a service MeshSubset target", []string{"a=" + `{"targetRef":{"kind":"MeshSubset","tags":{"kuma.io/service":"api"}},"from":[{"targetRef":{"kind":"MeshService","name":"redis"},"default":{"action":"Allow"}}]}`}, "",
			permSet{deflt: filter.ActionDeny, perms: []filter.Permission{rule("Exact", idRedis, "Allow")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := smallMesh(t, resource.FilterTypeWasm)
			in.Permissions = nil
			for _, p := range tt.perms {
				name, spec, _ := strings.Cut(p, "=")
				in.Permissions = append(in.Permissions, mtp(t, name, spec))
			}
			in.Dataplanes[0] = permDP(t, "web-1", "web", "web", "10.0.1.10", tt.extra)
			m, err := NewBuilder().Mesh(in)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmtPerms(m.perms["api"]), fmtPerms(tt.want); got != want {
				t.Errorf("api permissions:\n got %s\nwant %s", got, want)
			}
			if got, want := fmtPerms(m.perms["web"]), "default "+filter.DefaultAllowMesh; got != want && !strings.Contains(strings.Join(tt.perms, ""), `={"targetRef":{"kind":"Mesh"}`) {
				t.Errorf("web (not targeted) permissions: %s, want %s", got, want)
			}
		})
	}
}

// TestKumaPermissionsFollowDataplanes: a Kuma-form permission is resolved
// at every build: a new web dataplane with its own identity is admitted on
// the next build, and removed again when it leaves; the nodes of api are
// rebuilt while web's are reused.
func TestKumaPermissionsFollowDataplanes(t *testing.T) {
	in := smallMesh(t, resource.FilterTypeWasm)
	in.Permissions = []*resource.MeshTrafficPermission{mtp(t, "api-from-web",
		`{"targetRef":{"kind":"MeshService","name":"api"},"from":[{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`)}
	b := NewBuilder()
	build := func(in *Input) (*Mesh, *Node) {
		t.Helper()
		m, err := b.Mesh(in)
		if err != nil {
			t.Fatal(err)
		}
		b.BeginNodes()
		n, err := b.Node(m, m.Dataplanes["api-1"], false)
		if err != nil {
			t.Fatal(err)
		}
		b.EndNodes()
		return m, n
	}
	m1, n1 := build(in)
	if got := fmtPerms(m1.perms["api"]); got != "default Deny; Allow Exact "+idWeb {
		t.Fatalf("before: %s", got)
	}

	in2 := *in
	in2.Dataplanes = append(append([]*resource.Dataplane(nil), in.Dataplanes...), permDP(t, "web-2", "web", "web-canary", "10.0.1.11", ""))
	m2, n2 := build(&in2)
	canary := "spiffe://default.mesh.local/workload/web-canary"
	if got := fmtPerms(m2.perms["api"]); got != "default Deny; Allow Exact "+idWeb+"; Allow Exact "+canary {
		t.Errorf("after web-2 joined: %s", got)
	}
	if n1 == n2 {
		t.Error("api-1's node was reused although its permissions changed")
	}
	if !bytes.Contains(inboundFilterJSON(t, m2, n2), []byte(canary)) {
		t.Error("api-1's inbound filter config does not admit web-2's identity")
	}

	m3, n3 := build(in)
	if got := fmtPerms(m3.perms["api"]); got != "default Deny; Allow Exact "+idWeb {
		t.Errorf("after web-2 left: %s", got)
	}
	if bytes.Contains(inboundFilterJSON(t, m3, n3), []byte(canary)) {
		t.Error("web-2's identity is still admitted after it left")
	}
}

// inboundFilterJSON is the node's snapshot as inspect renders it (its
// inbound filter configuration included).
func inboundFilterJSON(t *testing.T, m *Mesh, n *Node) []byte {
	t.Helper()
	out, err := Resources(m, n, nil, nil).JSON()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKumaPermissionGolden: redis's permission written in Kuma's form
// generates exactly the configuration of the SPIFFE-ID form (the
// redis-1.wasm.json golden), and a Kuma-form mix on api (an
// AllowWithShadowDeny caller among them) has its own golden.
func TestKumaPermissionGolden(t *testing.T) {
	in := smallMesh(t, resource.FilterTypeWasm)
	in.Permissions[1] = mtp(t, "redis-from-web",
		`{"targetRef":{"kind":"MeshService","name":"redis"},"from":[{"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}}]}`)
	b := NewBuilder()
	m, err := b.Mesh(in)
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshotOf(t, b, m, "redis-1", false)
	checkSnapshot(t, snap)
	got, err := snap.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "redis-1.wasm.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("redis-1 with the Kuma-form permission differs from testdata/redis-1.wasm.json (the SPIFFE-ID form)")
	}

	in = smallMesh(t, resource.FilterTypeWasm)
	in.Dataplanes[0] = permDP(t, "web-1", "web", "web", "10.0.1.10", `,"version":"v1"`)
	in.Permissions[0] = mtp(t, "api-callers", `{"targetRef":{"kind":"MeshService","name":"api"},"from":[
	  {"targetRef":{"kind":"Mesh"},"default":{"action":"Deny"}},
	  {"targetRef":{"kind":"MeshService","name":"redis"},"default":{"action":"Allow"}},
	  {"targetRef":{"kind":"MeshServiceSubset","name":"web","tags":{"version":"v1"}},"default":{"action":"AllowWithShadowDeny"}}]}`)
	b = NewBuilder()
	if m, err = b.Mesh(in); err != nil {
		t.Fatal(err)
	}
	snap = snapshotOf(t, b, m, "api-1", false)
	checkSnapshot(t, snap)
	if got, err = snap.JSON(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(`\"action\":\"AllowWithShadowDeny\"`)) {
		t.Error("the filter config does not carry the AllowWithShadowDeny rule")
	}
	compareGoldenFile(t, filepath.Join("testdata", "api-1.kuma-permission.wasm.json"), got)
}

func compareGoldenFile(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated config (run with -update after checking the diff)", path)
	}
}

// TestKumaPermissionAttacks: callers are resolved from what a dataplane
// serves (its inbound tags) and from identities the mesh vouches for;
// nothing else a hostile dataplane declares admits it.
func TestKumaPermissionAttacks(t *testing.T) {
	allowWebAndTeam := mtp(t, "api-callers", `{"targetRef":{"kind":"MeshService","name":"api"},"from":[
	  {"targetRef":{"kind":"MeshService","name":"web"},"default":{"action":"Allow"}},
	  {"targetRef":{"kind":"MeshSubset","tags":{"team":"a"}},"default":{"action":"Allow"}}]}`)
	tests := []struct {
		name     string
		dp       string
		identity string // a MeshIdentity document, optional
		evilID   string
	}{
		{"labels and outbounds naming web or team a are not inbound tags", `{"mesh":"default","name":"evil-1","labels":{"kuma.io/workload":"evil","team":"a","kuma.io/service":"web"},
		  "networking":{"address":"10.0.9.9","inbound":[{"port":15000,"tags":{"kuma.io/service":"evil","kuma.io/protocol":"http"}}],
		  "outbound":[{"port":18080,"tags":{"kuma.io/service":"web","team":"a"}}]}}`, "", "spiffe://default.mesh.local/workload/evil"},
		{"a dataplane serving web whose identity the mesh refuses is not admitted", `{"mesh":"default","name":"evil-2","labels":{"kuma.io/workload":"evil","td":"x"},
		  "networking":{"address":"10.0.9.9","inbound":[{"port":15000,"tags":{"kuma.io/service":"web","kuma.io/protocol":"http","team":"a"}}]}}`,
			`{"mesh":"default","name":"elsewhere","spec":{"selector":{"dataplane":{"matchLabels":{"td":"x"}}},"spiffeID":{"trustDomain":"attacker.example"}}}`, "spiffe://attacker.example/workload/evil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := smallMesh(t, resource.FilterTypeWasm)
			in.Permissions = []*resource.MeshTrafficPermission{allowWebAndTeam}
			in.Dataplanes = append(in.Dataplanes, decode[*resource.Dataplane](t, "Dataplane", tt.dp))
			if tt.identity != "" {
				in.Identities = []*resource.MeshIdentity{decode[*resource.MeshIdentity](t, "MeshIdentity", tt.identity)}
			}
			m, err := NewBuilder().Mesh(in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.identity != "" && m.IDErrors["evil-2"] == nil {
				t.Fatal("the MeshIdentity outside the trust domain was not refused; the case tests nothing")
			}
			got := fmtPerms(m.perms["api"])
			if want := "default Deny; Allow Exact " + idWeb; got != want {
				t.Errorf("api permissions:\n got %s\nwant %s", got, want)
			}
			if strings.Contains(got, tt.evilID) || strings.Contains(got, "evil") {
				t.Errorf("the hostile dataplane's identity is admitted: %s", got)
			}
		})
	}
}
