package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

const dp = `{"type":"Dataplane","mesh":"default","name":"web-1","networking":{"address":"10.0.0.1","inbound":[{"port":15000,"servicePort":8080,"tags":{"kuma.io/service":"web"}}]}}`

func newServer(t *testing.T, token string) (*httptest.Server, store.Store) {
	t.Helper()
	s := memory.New(nil)
	wellKnown := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"keys":[]}`) })
	srv := httptest.NewServer(Handler(Options{Manager: manager.New(s), Token: token, WellKnown: wellKnown}))
	t.Cleanup(srv.Close)
	return srv, s
}

func do(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCRUD(t *testing.T) {
	srv, _ := newServer(t, "")
	steps := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"PUT", "/meshes/default/dataplanes/web-1", dp, 400, `apply a Mesh named`}, // no mesh yet
		{"PUT", "/meshes/default", `type: Mesh` + "\n" + `name: default`, 201, `"name": "default"`},
		{"PUT", "/meshes/default", `{}`, 200, `"name": "default"`},
		{"PUT", "/meshes/default/dataplanes/web-1", dp, 201, `"creationTime"`},
		{"GET", "/meshes/default/dataplanes/web-1", "", 200, `"address": "10.0.0.1"`},
		{"GET", "/meshes/default/Dataplanes", "", 200, `"total": 1`},
		{"GET", "/dataplanes", "", 200, `"total": 1`},
		{"PUT", "/meshes/default/dataplanes/web-2", dp, 400, "path_mismatch"},
		{"PUT", "/meshes/default/dataplanes/web-1", `{"type":"Dataplane","networking":{}}`, 400, `"field":"networking.address"`},
		{"PUT", "/meshes/default/gateways/x", dp, 404, "unknown_kind"},
		{"PUT", "/meshes/default/hostnamegenerators/x", dp, 404, "global_kind"},
		{"GET", "/meshes/default/dataplanes/nope", "", 404, "not_found"},
		{"DELETE", "/meshes/default", "", 409, "mesh_not_empty"},
		{"DELETE", "/meshes/default/dataplanes/web-1", "", 200, ""},
		{"GET", "/meshes/default/dataplanes", "", 200, `"total": 0`},
		{"PUT", "/hostnamegenerators/svc", `{"spec":{"template":"{{ .DisplayName }}.svc.mesh.local"}}`, 201, `"template"`},
		{"GET", "/hostnamegenerators/svc", "", 200, `"template"`},
		{"GET", "/dataplanes/x", "", 404, "mesh_scoped_kind"},
		{"DELETE", "/meshes/default", "", 200, ""},
	}
	for i, s := range steps {
		status, body := do(t, s.method, srv.URL+s.path, "", s.body)
		if status != s.status || !strings.Contains(body, s.contains) {
			t.Fatalf("step %d %s %s: %d %s; want %d containing %q", i, s.method, s.path, status, body, s.status, s.contains)
		}
		if status >= 400 {
			if p := problem.Decode(status, []byte(body)); p == nil || p.Title == "" {
				t.Errorf("step %d: error body is not the problem shape: %s", i, body)
			}
		}
	}
}

func TestApplyAllOrNothing(t *testing.T) {
	srv, s := newServer(t, "")
	file := "type: Mesh\nname: default\n---\n" + dp + "\n---\ntype: Dataplane\nmesh: default\nname: bad\nnetworking:\n  address: nope\n  inbound: [{port: 70000, tags: {kuma.io/service: web}}]\n"
	status, body := do(t, "POST", srv.URL+"/apply", "", file)
	if status != 400 {
		t.Fatalf("status %d: %s", status, body)
	}
	var p problem.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"document[2].networking.address": false, "document[2].networking.inbound[0].port": false}
	for _, c := range p.Causes {
		if _, ok := want[c.Field]; ok {
			want[c.Field] = true
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("cause %s missing in %s", f, body)
		}
	}
	for _, kind := range []string{"Mesh", "Dataplane"} {
		if recs, _ := s.List(t.Context(), kind, store.ListOptions{}); len(recs) != 0 {
			t.Errorf("%d %s stored after a refused apply", len(recs), kind)
		}
	}
	status, body = do(t, "POST", srv.URL+"/apply", "", "type: Mesh\nname: default\n---\n"+dp)
	if status != 200 || !strings.Contains(body, `"web-1"`) {
		t.Fatalf("valid apply: %d %s", status, body)
	}
}

func TestTokenAndLimits(t *testing.T) {
	const token = "s3cret-token-0123456789"
	srv, _ := newServer(t, token)
	for _, path := range []string{"/meshes", "/dataplanes", "/"} {
		if status, _ := do(t, "GET", srv.URL+path, "", ""); status != 401 {
			t.Errorf("GET %s without token: %d, want 401", path, status)
		}
		if status, _ := do(t, "GET", srv.URL+path, "wrong", ""); status != 401 {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, status)
		}
		if status, _ := do(t, "GET", srv.URL+path, token, ""); status != 200 {
			t.Errorf("GET %s with the token: %d, want 200", path, status)
		}
	}
	if status, _ := do(t, "PUT", srv.URL+"/meshes/default", "", `{}`); status != 401 {
		t.Errorf("write without token: %d", status)
	}
	for _, open := range []string{"/ready", "/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		if status, _ := do(t, "GET", srv.URL+open, "", ""); status != 200 {
			t.Errorf("%s must stay open: %d", open, status)
		}
	}
	big := `{"type":"Mesh","name":"default","labels":{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}}`
	if status, body := do(t, "PUT", srv.URL+"/meshes/default", token, big); status != 413 {
		t.Errorf("oversized body: %d %s", status, body)
	}
}
