package admin

import (
	"context"
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

// allowAll is what a hostile web page would write: every service may
// call every other.
const allowAll = `{"type":"MeshTrafficPermission","mesh":"default","name":"allow-all","spec":{"targetRef":{"kind":"Mesh"},"from":[{"spiffeID":{"type":"Prefix","value":"spiffe://default.mesh.local/"},"action":"Allow"}]}}`

type req struct {
	method, path, body string
	header             map[string]string
}

func send(t *testing.T, base string, r req) (int, *problem.Problem, string) {
	t.Helper()
	hr, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		if k == "Host" {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, problem.Decode(resp.StatusCode, b), string(b)
}

// TestBrowserAttacksRefused: in token-less (loopback) mode, a page the
// operator visits can send simple cross-origin requests (CSRF), or make
// its own name resolve to 127.0.0.1 (DNS rebinding); neither may write.
func TestBrowserAttacksRefused(t *testing.T) {
	srv, st := newServer(t, "")
	if status, body := do(t, "PUT", srv.URL+"/meshes/default", "", `{}`); status != 201 {
		t.Fatalf("mesh: %d %s", status, body)
	}
	for _, tc := range []struct {
		name   string
		r      req
		status int
		reason string
	}{
		{"CSRF: text/plain form-less POST from a foreign origin", req{"POST", "/apply", allowAll,
			map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}}, 403, "origin_not_loopback"},
		{"CSRF: text/plain POST without Origin", req{"POST", "/apply", allowAll,
			map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type"},
		{"CSRF: form POST", req{"POST", "/apply", "a=" + allowAll,
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type"},
		{"CSRF: multipart POST", req{"POST", "/apply", allowAll,
			map[string]string{"Content-Type": "multipart/form-data; boundary=x"}}, 415, "unsupported_media_type"},
		{"POST without a content type", req{"POST", "/apply", allowAll, nil}, 415, "unsupported_media_type"},
		{"CSRF: JSON POST from a foreign origin", req{"POST", "/apply", allowAll,
			map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}}, 403, "origin_not_loopback"},
		{"Origin null (sandboxed frame, file://)", req{"POST", "/apply", allowAll,
			map[string]string{"Content-Type": "application/json", "Origin": "null"}}, 403, "origin_not_loopback"},
		{"Origin on a loopback-looking subdomain", req{"POST", "/apply", allowAll,
			map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1.evil.example"}}, 403, "origin_not_loopback"},
		{"DNS rebinding: JSON POST with Host evil.example", req{"POST", "/apply", allowAll,
			map[string]string{"Content-Type": "application/json", "Host": "evil.example"}}, 403, "host_not_loopback"},
		{"DNS rebinding: same-origin PUT", req{"PUT", "/meshes/default/meshtrafficpermissions/allow-all", allowAll,
			map[string]string{"Content-Type": "application/json", "Host": "evil.example:5681", "Origin": "http://evil.example:5681"}}, 403, "host_not_loopback"},
		{"DNS rebinding: read", req{"GET", "/meshes/default/dataplanes", "", map[string]string{"Host": "evil.example:5681"}}, 403, "host_not_loopback"},
		{"DNS rebinding: delete", req{"DELETE", "/meshes/default", "", map[string]string{"Host": "localhost.evil.example"}}, 403, "host_not_loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, p, body := send(t, srv.URL, tc.r)
			if status != tc.status || p == nil || p.Reason != tc.reason || p.Title == "" {
				t.Fatalf("%d %s; want %d %s in the problem shape", status, body, tc.status, tc.reason)
			}
			recs, err := st.List(t.Context(), "MeshTrafficPermission", store.ListOptions{})
			if err != nil || len(recs) != 0 {
				t.Fatalf("refused request stored %d permissions (%v)", len(recs), err)
			}
			if _, err := st.Get(t.Context(), store.Key{Kind: "Mesh", Name: "default"}); err != nil {
				t.Fatalf("refused request deleted the mesh: %v", err)
			}
		})
	}
}

// TestLocalClientsAccepted: the CLI, curl and a page served from loopback
// itself keep working.
func TestLocalClientsAccepted(t *testing.T) {
	srv, _ := newServer(t, "")
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	for i, r := range []req{
		{"PUT", "/meshes/default", "type: Mesh", map[string]string{"Content-Type": "application/yaml"}},
		{"PUT", "/meshes/default", "{}", map[string]string{"Content-Type": "application/json; charset=utf-8", "Host": "localhost" + port}},
		{"PUT", "/meshes/default", "{}", map[string]string{"Content-Type": "application/x-yaml", "Host": "[::1]" + port}},
		{"PUT", "/meshes/default", "{}", map[string]string{"Content-Type": "text/yaml", "Host": "127.0.0.1", "Origin": "http://localhost" + port}},
		{"POST", "/apply", allowAll, map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1" + port}},
		{"GET", "/meshes/default/meshtrafficpermissions/allow-all", "", map[string]string{"Host": "LOCALHOST" + port}},
		{"DELETE", "/meshes/default/meshtrafficpermissions/allow-all", "", nil}, // curl -X DELETE: no body, no type
	} {
		if status, _, body := send(t, srv.URL, r); status/100 != 2 {
			t.Errorf("request %d %s %s %v: %d %s", i, r.method, r.path, r.header, status, body)
		}
	}
}

// TestTokenModeKeepsTheTokenCheck: with a token the Host may be any name
// (the API is bound off loopback), the token decides, and writes still
// need a JSON or YAML body.
func TestTokenModeKeepsTheTokenCheck(t *testing.T) {
	const token = "s3cret-token-0123456789"
	srv, st := newServer(t, token)
	auth := "Bearer " + token
	for _, tc := range []struct {
		r      req
		status int
		reason string
	}{
		{req{"PUT", "/meshes/default", "{}", map[string]string{"Content-Type": "application/json", "Host": "cp.internal:5681", "Authorization": auth}}, 201, ""},
		{req{"POST", "/apply", allowAll, map[string]string{"Content-Type": "application/json", "Host": "cp.internal:5681"}}, 401, "unauthenticated"},
		{req{"POST", "/apply", allowAll, map[string]string{"Content-Type": "text/plain", "Authorization": auth}}, 415, "unsupported_media_type"},
	} {
		status, p, body := send(t, srv.URL, tc.r)
		if status != tc.status || tc.reason != "" && (p == nil || p.Reason != tc.reason) {
			t.Errorf("%s %s %v: %d %s; want %d %s", tc.r.method, tc.r.path, tc.r.header, status, body, tc.status, tc.reason)
		}
	}
	if recs, _ := st.List(t.Context(), "MeshTrafficPermission", store.ListOptions{}); len(recs) != 0 {
		t.Errorf("refused writes stored %d permissions", len(recs))
	}
}

func TestLoopbackNames(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5681": true, "127.0.0.1": true, "127.9.9.9:1": true, "[::1]:5681": true, "[::1]": true, "::1": true,
		"localhost:5681": true, "LocalHost": true,
		"": false, "evil.example": false, "evil.example:5681": false, "localhost.evil.example": false, "localhost.": false,
		"127.0.0.1.nip.io:5681": false, "10.0.0.1:5681": false, "0.0.0.0:5681": false, "[::]:5681": false, "[fe80::1%25lo]:5681": false,
		"127.1:5681": false, "2130706433:5681": false, "[::ffff:127.0.0.1]:5681": true,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
	for origin, want := range map[string]bool{
		"http://127.0.0.1:5681": true, "https://localhost": true, "http://[::1]:8080": true,
		"null": false, "file://": false, "http://evil.example": false, "http://localhost.evil.example": false,
		"ftp://127.0.0.1": false, "http://user@127.0.0.1": false, "127.0.0.1:5681": false, "http://127.0.0.1, http://evil.example": false,
	} {
		if got := loopbackOrigin(origin); got != want {
			t.Errorf("loopbackOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
}

type leakyInspector string

func (l leakyInspector) InspectDataplane(context.Context, string, string) ([]byte, error) {
	return []byte(l), nil
}

// TestInspectNeverServesKeyMaterial: whatever the Inspector returns, the
// admin API does not serve a private key or a JWT.
func TestInspectNeverServesKeyMaterial(t *testing.T) {
	for out, want := range map[string]int{
		`{"version":"1","resources":{"s":[{"privateKey":"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----"}]}}`: 500,
		`{"version":"1","resources":{"e":[{"value":"{\"token\":\"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\"}"}]}}`:              500,
		`{"version":"1","resources":{"e":[{"value":"{\"token\":\"[redacted JWT; expires 2030-01-01T00:00:00Z]\"}"}]}}`:           200,
	} {
		s := memory.New(nil)
		srv := httptest.NewServer(Handler(Options{Manager: manager.New(s), Inspector: leakyInspector(out)}))
		do(t, "PUT", srv.URL+"/meshes/default", "", `{}`)
		do(t, "PUT", srv.URL+"/meshes/default/dataplanes/web-1", "", dp)
		status, body := do(t, "GET", srv.URL+"/meshes/default/dataplanes/web-1/xds", "", "")
		srv.Close()
		if status != want || want != 200 && (strings.Contains(body, "PRIVATE") || strings.Contains(body, "eyJ")) {
			t.Errorf("inspect of %s: %d %s, want %d", out, status, body, want)
		}
	}
}
