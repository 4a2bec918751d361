package generate

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const testBundle = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

func decode[T resource.Object](t testing.TB, kind, doc string) T {
	t.Helper()
	obj, err := resource.Unmarshal(kind, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return obj.(T)
}

// smallMesh is the golden mesh: web (http) calls api (grpc) and redis
// (tcp); api is protected by a MeshTrafficPermission; api-2 is not
// ready and redis-2 is offline, so neither is an endpoint.
func smallMesh(t testing.TB, filterType string) *Input {
	mesh := decode[*resource.Mesh](t, "Mesh", `{"name":"default","filter":{"type":"`+filterType+`"}}`)
	dp := func(doc string) *resource.Dataplane { return decode[*resource.Dataplane](t, "Dataplane", doc) }
	return &Input{
		Mesh: mesh,
		Dataplanes: []*resource.Dataplane{
			dp(`{"mesh":"default","name":"web-1","labels":{"kuma.io/workload":"web"},"networking":{"address":"10.0.1.10",
			  "inbound":[{"port":15000,"servicePort":8080,"tags":{"kuma.io/service":"web","kuma.io/protocol":"http"}}],
			  "outbound":[{"port":16379,"tags":{"kuma.io/service":"redis"}},{"port":18080,"tags":{"kuma.io/service":"api"}}]}}`),
			dp(`{"mesh":"default","name":"api-1","networking":{"address":"10.0.1.20",
			  "inbound":[{"port":15000,"servicePort":9090,"tags":{"kuma.io/service":"api","kuma.io/protocol":"grpc"}}]}}`),
			dp(`{"mesh":"default","name":"api-2","networking":{"address":"10.0.1.21",
			  "inbound":[{"port":15000,"servicePort":9090,"state":"NotReady","tags":{"kuma.io/service":"api","kuma.io/protocol":"grpc"}}]}}`),
			dp(`{"mesh":"default","name":"redis-1","networking":{"address":"10.0.1.30",
			  "inbound":[{"port":16379,"servicePort":6379,"tags":{"kuma.io/service":"redis","kuma.io/protocol":"tcp"}}]}}`),
			dp(`{"mesh":"default","name":"redis-2","networking":{"address":"10.0.1.31",
			  "inbound":[{"port":16379,"servicePort":6379,"tags":{"kuma.io/service":"redis","kuma.io/protocol":"tcp"}}]}}`),
		},
		Online: map[string]bool{"web-1": true, "api-1": true, "api-2": true, "redis-1": true},
		Permissions: []*resource.MeshTrafficPermission{
			decode[*resource.MeshTrafficPermission](t, "MeshTrafficPermission", `{"mesh":"default","name":"api-from-web","spec":{
			  "targetRef":{"kind":"MeshService","name":"api"},
			  "from":[{"spiffeID":{"type":"Prefix","value":"spiffe://default.mesh.local/workload/"},"action":"Allow"},
			          {"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/batch"},"action":"Deny"}]}}`),
			decode[*resource.MeshTrafficPermission](t, "MeshTrafficPermission", `{"mesh":"default","name":"redis-from-web","spec":{
			  "targetRef":{"kind":"MeshService","name":"redis"},
			  "from":[{"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/web"},"action":"Allow"}]}}`),
		},
		VIPs: map[string]netip.Addr{"web": netip.MustParseAddr("127.1.0.1"), "api": netip.MustParseAddr("127.1.0.2"), "redis": netip.MustParseAddr("127.1.0.3")},
		Generators: []*resource.HostnameGenerator{decode[*resource.HostnameGenerator](t, "HostnameGenerator",
			`{"name":"internal","spec":{"selector":{"meshService":{"matchLabels":{"kuma.io/protocol":"grpc"}}},"template":"{{ .DisplayName }}.svc.internal"}}`)},
		Domain:         "mesh.local",
		VIPPort:        8080,
		JWTIssuer:      "ecsmesh-cp/jwt-svid",
		JWKS:           json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
		TrustBundlePEM: []byte(testBundle),
	}
}

func snapshotOf(t *testing.T, b *Builder, m *Mesh, name string, bind bool) Snapshot {
	t.Helper()
	n, err := b.Node(m, m.Dataplanes[name], bind)
	if err != nil {
		t.Fatal(err)
	}
	id, err := IdentitySecretResource([]byte("-----BEGIN CERTIFICATE-----\nMIIleaf\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\nMIGkey\n-----END PRIVATE KEY-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	return Resources(m, n, id, OutboundFilterConfig(m, n, testTokens(m, n)))
}

// testTokens gives n a token for every destination TokenAudiences names.
func testTokens(m *Mesh, n *Node) RouteTokens {
	auds, _ := TokenAudiences(m, n, 100)
	toks := RouteTokens{}
	for i, aud := range auds {
		toks[aud] = Token{Value: "header.payload" + strconv.Itoa(i) + ".sig", ExpiresAt: time.Unix(1767225600, 0)}
	}
	return toks
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file, filterType, node string
		bind                   bool
	}{
		{"web-1.wasm.bind.json", resource.FilterTypeWasm, "web-1", true},
		{"web-1.go.json", resource.FilterTypeGo, "web-1", false},
		{"redis-1.wasm.json", resource.FilterTypeWasm, "redis-1", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := NewBuilder()
			m, err := b.Mesh(smallMesh(t, tc.filterType))
			if err != nil {
				t.Fatal(err)
			}
			snap := snapshotOf(t, b, m, tc.node, tc.bind)
			checkSnapshot(t, snap)
			got, err := snap.JSON()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
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
		})
	}
}

// checkSnapshot validates every resource and every Any inside it, checks
// the snapshot is consistent (every referenced cluster, EDS name, secret
// and ECDS name exists) and parses each filter configuration.
func checkSnapshot(t *testing.T, s Snapshot) {
	t.Helper()
	have := map[string]map[string]bool{}
	refs := map[string]map[string]bool{resourcev3.ClusterType: {}, resourcev3.EndpointType: {}, resourcev3.SecretType: {}, resourcev3.ExtensionConfigType: {}}
	for typ, rs := range s {
		have[typ] = map[string]bool{}
		for _, r := range rs {
			have[typ][r.Name] = true
			a, err := r.Packed()
			if err != nil {
				t.Fatal(err)
			}
			if a.GetTypeUrl() != typ {
				t.Errorf("%s has type %s in %s", r.Name, a.GetTypeUrl(), typ)
			}
			walkAnys(t, a, func(m proto.Message) {
				switch m := m.(type) {
				case *wrapperspb.StringValue:
					if _, err := filter.Parse([]byte(m.GetValue())); err != nil {
						t.Errorf("%s: filter config: %v\n%s", r.Name, err, m.GetValue())
					}
				case *corev3.TypedExtensionConfig:
					if m.GetName() != r.Name {
						t.Errorf("ECDS resource %s is named %s inside", r.Name, m.GetName())
					}
				}
				collectRefs(m.ProtoReflect(), typ, refs)
			})
		}
	}
	for typ, names := range refs {
		for n := range names {
			if !have[typ][n] && n != "" {
				t.Errorf("inconsistent snapshot: %s %q is referenced but absent", typ, n)
			}
		}
	}
}

// collectRefs records the names a message refers to: clusters (route and
// tcp_proxy targets), EDS cluster names, SDS secrets and ECDS names.
func collectRefs(m protoreflect.Message, typ string, refs map[string]map[string]bool) {
	switch m.Descriptor().FullName() {
	case "envoy.config.route.v3.RouteAction", "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy":
		if f := m.Descriptor().Fields().ByName("cluster"); f != nil && m.Has(f) {
			refs[resourcev3.ClusterType][m.Get(f).String()] = true
		}
	case "envoy.config.cluster.v3.Cluster":
		if typ == resourcev3.ClusterType {
			f := m.Descriptor().Fields().ByName("type")
			if m.Get(f).Enum() == 3 { // EDS
				refs[resourcev3.EndpointType][m.Get(m.Descriptor().Fields().ByName("name")).String()] = true
			}
		}
	case "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig":
		refs[resourcev3.SecretType][m.Get(m.Descriptor().Fields().ByName("name")).String()] = true
	case "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter":
		if f := m.Descriptor().Fields().ByName("config_discovery"); m.Has(f) {
			refs[resourcev3.ExtensionConfigType][m.Get(m.Descriptor().Fields().ByName("name")).String()] = true
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				collectRefs(v.List().Get(i).Message(), typ, refs)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				collectRefs(mv.Message(), typ, refs)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil && fd.Message().FullName() != "google.protobuf.Any":
			collectRefs(v.Message(), typ, refs)
		}
		return true
	})
}

// walkAnys unpacks a and every Any below it, validates each with
// ValidateAll and reports it to f.
func walkAnys(t *testing.T, a *anypb.Any, f func(proto.Message)) {
	t.Helper()
	inner, err := a.UnmarshalNew()
	if err != nil {
		t.Fatalf("unpacking %s: %v", a.GetTypeUrl(), err)
	}
	if v, ok := inner.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			t.Fatalf("%s: %v", a.GetTypeUrl(), err)
		}
	} else if _, ok := inner.(*xdstype.TypedStruct); !ok && !strings.HasPrefix(a.GetTypeUrl(), "type.googleapis.com/google.protobuf.") {
		t.Fatalf("%s has no ValidateAll", a.GetTypeUrl())
	}
	f(inner)
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			visit := func(mm protoreflect.Message) {
				if x, ok := mm.Interface().(*anypb.Any); ok {
					walkAnys(t, x, f)
				} else {
					walk(mm)
				}
			}
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					visit(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				visit(v.Message())
			}
			return true
		})
	}
	walk(inner.ProtoReflect())
}

func TestEndpointsAndMemo(t *testing.T) {
	in := smallMesh(t, resource.FilterTypeWasm)
	b := NewBuilder()
	m1, err := b.Mesh(in)
	if err != nil {
		t.Fatal(err)
	}
	wantEPs := map[string][]Endpoint{
		"api":   {{"10.0.1.20", 15000}},
		"redis": {{"10.0.1.30", 16379}},
		"web":   {{"10.0.1.10", 15000}},
	}
	for svc, want := range wantEPs {
		got := m1.Services[svc].Endpoints
		if len(got) != len(want) || got[0] != want[0] {
			t.Errorf("%s endpoints = %v, want %v", svc, got, want)
		}
	}
	if got := m1.Services["api"].SpiffeIDs; len(got) != 1 || got[0] != "spiffe://default.mesh.local/workload/api" {
		t.Errorf("api SPIFFE IDs = %v", got)
	}
	if ps := m1.perms["api"]; ps.deflt != filter.ActionDeny || len(ps.perms) != 2 {
		t.Errorf("api permissions = %+v, want 2 rules and default Deny", ps)
	}
	if ps := m1.perms["web"]; ps.deflt != filter.DefaultAllowMesh || len(ps.perms) != 0 {
		t.Errorf("web permissions = %+v, want the mesh default", ps)
	}

	// api-2 becomes ready: only api's endpoints change.
	in2 := *in
	in2.Dataplanes = append([]*resource.Dataplane(nil), in.Dataplanes...)
	ready := *in.Dataplanes[2]
	ready.Networking.Inbound = []resource.Inbound{ready.Networking.Inbound[0]}
	ready.Networking.Inbound[0].State = resource.StateReady
	in2.Dataplanes[2] = &ready
	m2, err := b.Mesh(&in2)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"api", "redis", "web"} {
		if m1.ClusterByName[svc] != m2.ClusterByName[svc] {
			t.Errorf("cluster %s rebuilt although unchanged", svc)
		}
		changed := m1.EndpointByName[svc] != m2.EndpointByName[svc]
		if changed != (svc == "api") {
			t.Errorf("endpoints %s changed=%v", svc, changed)
		}
	}
	if len(m2.Services["api"].Endpoints) != 2 {
		t.Errorf("api endpoints = %v, want 2", m2.Services["api"].Endpoints)
	}
	b.BeginNodes()
	n1, err := b.Node(m2, m2.Dataplanes["web-1"], false)
	if err != nil {
		t.Fatal(err)
	}
	b.EndNodes()
	b.BeginNodes()
	n2, err := b.Node(m2, m2.Dataplanes["web-1"], false)
	if err != nil {
		t.Fatal(err)
	}
	b.EndNodes()
	if n1 != n2 {
		t.Error("node rebuilt although unchanged")
	}
}

// TestPermissionModes: Allow rules make an allow-list (default Deny); Deny
// rules alone refuse who they name and keep the mesh default; a service no
// permission targets keeps the mesh default.
func TestPermissionModes(t *testing.T) {
	tests := []struct {
		name        string
		meshDefault string
		rules       string // spec.from of one permission targeting api; "" = none
		wantDefault string
		wantRules   int
	}{
		{"no permission", "", "", filter.DefaultAllowMesh, 0},
		{"no permission, mesh Deny", `,"defaultPermission":"Deny"`, "", filter.ActionDeny, 0},
		{"deny only keeps the mesh default", "", `[{"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/web"},"action":"Deny"}]`, filter.DefaultAllowMesh, 1},
		{"allow makes an allow-list", "", `[{"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/web"},"action":"Allow"}]`, filter.ActionDeny, 1},
		{"allow and deny", "", `[{"spiffeID":{"type":"Prefix","value":"spiffe://default.mesh.local/"},"action":"Allow"},{"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/web"},"action":"Deny"}]`, filter.ActionDeny, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := smallMesh(t, resource.FilterTypeWasm)
			in.Mesh = decode[*resource.Mesh](t, "Mesh", `{"name":"default"`+tt.meshDefault+`}`)
			in.Permissions = nil
			if tt.rules != "" {
				in.Permissions = []*resource.MeshTrafficPermission{decode[*resource.MeshTrafficPermission](t, "MeshTrafficPermission",
					`{"mesh":"default","name":"p","spec":{"targetRef":{"kind":"MeshService","name":"api"},"from":`+tt.rules+`}}`)}
			}
			m, err := NewBuilder().Mesh(in)
			if err != nil {
				t.Fatal(err)
			}
			if ps := m.perms["api"]; ps.deflt != tt.wantDefault || len(ps.perms) != tt.wantRules {
				t.Errorf("api permissions = %+v, want default %s and %d rules", ps, tt.wantDefault, tt.wantRules)
			}
		})
	}
}

// TestFilterPath: the ECDS filter config names the file the sidecars hold
// (ECSMESH_FILTER_WASM_PATH / ECSMESH_FILTER_GO_PATH), defaulting to the
// image's paths.
func TestFilterPath(t *testing.T) {
	tests := []struct {
		filterType, wasm, goPath, want string
	}{
		{resource.FilterTypeWasm, "", "", dpapi.FilterWasmPath},
		{resource.FilterTypeGo, "", "", dpapi.FilterGoPath},
		{resource.FilterTypeWasm, "/opt/f.wasm", "/opt/f.so", "/opt/f.wasm"},
		{resource.FilterTypeGo, "/opt/f.wasm", "/opt/f.so", "/opt/f.so"},
	}
	for _, tt := range tests {
		t.Run(tt.filterType+tt.want, func(t *testing.T) {
			in := smallMesh(t, tt.filterType)
			in.WasmPath, in.GoPath = tt.wasm, tt.goPath
			b := NewBuilder()
			m, err := b.Mesh(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := snapshotOf(t, b, m, m.ServiceNames[0]+"-1", false).JSON()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), `"`+tt.want+`"`) {
				t.Errorf("the filter config does not name %s", tt.want)
			}
		})
	}
}
