package filter_test

import (
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/filter"
)

const l7Config = `{"mode":"inbound","identity":{"spiffeId":"spiffe://default.mesh.local/workload/api"},
 "inbound":{"service":"api","default":"AllowMesh","permissions":[
  {"type":"Exact","value":"spiffe://default.mesh.local/workload/web","action":"Deny","rules":[{"match":{"paths":[{"type":"Prefix","value":"/admin"}]}}]},
  {"type":"Exact","value":"spiffe://default.mesh.local/workload/ops","action":"Allow","rules":[{"match":{"methods":["GET","POST"],"paths":[{"type":"Prefix","value":"/admin"}]}}]},
  {"type":"Exact","value":"spiffe://default.mesh.local/workload/ops","action":"Deny"},
  {"type":"Prefix","value":"spiffe://other.mesh.local/","action":"Allow","rules":[{"match":{"methods":["GET"],"paths":[{"type":"Exact","value":"/health"}]}}]}
 ]}}`

// TestL7Permissions: rules on permissions decide per request, after the
// SPIFFE identity; Deny beats Allow; a permission whose rules do not match
// is as if absent; paths that are not canonical are refused.
func TestL7Permissions(t *testing.T) {
	c, err := filter.Parse([]byte(l7Config))
	if err != nil {
		t.Fatal(err)
	}
	if !c.NeedsRequestLine() {
		t.Fatal("a config with rules must ask for :method and :path")
	}
	const web, ops, other = "spiffe://default.mesh.local/workload/web", "spiffe://default.mesh.local/workload/ops", "spiffe://other.mesh.local/workload/probe"
	for _, tc := range []struct {
		name, peer, method, path string
		status                   int
	}{
		{"web GET / (mesh default)", web, "GET", "/", 0},
		{"web GET /admin denied by its rule", web, "GET", "/admin", 403},
		{"web GET /admin/users denied (segment prefix)", web, "GET", "/admin/users?x=1", 403},
		{"web GET /administrator: not the /admin segment", web, "GET", "/administrator", 0},
		{"web GET /x/../admin: not canonical", web, "GET", "/x/../admin", 403},
		{"web GET //admin: not canonical", web, "GET", "//admin", 403},
		{"web GET /%61dmin: encoded", web, "GET", "/%61dmin", 403},
		{"ops GET /admin: the rule-less Deny beats the Allow rule", ops, "GET", "/admin", 403},
		{"other GET /health: allowed by its rule", other, "GET", "/health", 0},
		{"other POST /health: rule does not match, default refuses another trust domain", other, "POST", "/health", 403},
		{"other GET /health/x: exact path only", other, "GET", "/health/x", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d filter.Decision
			c.Decide(&filter.Request{PeerURISAN: tc.peer, Method: tc.method, Path: tc.path}, &d)
			if d.Status != tc.status {
				t.Errorf("status %d (%s), want %d", d.Status, d.Body, tc.status)
			}
			if tc.status == 0 && d.PeerID != tc.peer {
				t.Errorf("peer %q", d.PeerID)
			}
		})
	}
}

func TestL7ConfigErrors(t *testing.T) {
	_, err := filter.Parse([]byte(`{"mode":"inbound","identity":{"spiffeId":"spiffe://d.mesh.local/workload/api"},"inbound":{"service":"api","permissions":[
	  {"type":"Exact","value":"spiffe://d.mesh.local/workload/web","action":"Deny","rules":[{"match":{}},{"match":{"methods":["get"],"paths":[{"type":"Regex","value":"admin"},{"type":"Prefix","value":"/a/../b"}]}}]}]}}`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"inbound.permissions[0].rules[0].match: must set methods, paths or both",
		`inbound.permissions[0].rules[1].match.methods[0]: must be an upper-case HTTP method, not "get"`,
		`inbound.permissions[0].rules[1].match.paths[0].type`,
		`inbound.permissions[0].rules[1].match.paths[0].value`,
		`inbound.permissions[0].rules[1].match.paths[1].value`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := filter.Parse([]byte(`{"mode":"inbound","identity":{"spiffeId":"spiffe://d.mesh.local/workload/api"},"inbound":{"service":"api","permissions":[
	  {"type":"Exact","value":"spiffe://d.mesh.local/workload/web","action":"Deny","rules":[{"match":{"verbs":["GET"]}}]}]}}`)); err == nil || !strings.Contains(err.Error(), "verbs") {
		t.Errorf("an unknown match field must be an error naming it: %v", err)
	}
}

// TestL7ZeroAllocs: the per-request L7 decision allocates nothing once the
// peer is cached.
func TestL7ZeroAllocs(t *testing.T) {
	c, err := filter.Parse([]byte(l7Config))
	if err != nil {
		t.Fatal(err)
	}
	req := filter.Request{PeerURISAN: "spiffe://default.mesh.local/workload/web", Method: "GET", Path: "/admin/users?page=2"}
	var d filter.Decision
	c.Decide(&req, &d)
	if n := testing.AllocsPerRun(1000, func() { c.Decide(&req, &d) }); n != 0 {
		t.Errorf("%v allocs per decision", n)
	}
}

func BenchmarkInboundL7(b *testing.B) {
	c, err := filter.Parse([]byte(l7Config))
	if err != nil {
		b.Fatal(err)
	}
	req := filter.Request{PeerURISAN: "spiffe://default.mesh.local/workload/web", Method: "GET", Path: "/orders/42"}
	var d filter.Decision
	b.ReportAllocs()
	for b.Loop() {
		c.Decide(&req, &d)
	}
}

func FuzzL7Path(f *testing.F) {
	c, err := filter.Parse([]byte(l7Config))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{"/admin", "/admin/../x", "//admin", "/%2e%2e/admin", "/x/./admin", "/admin?x", "/admin#f"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		var d filter.Decision
		c.Decide(&filter.Request{PeerURISAN: "spiffe://default.mesh.local/workload/web", Method: "GET", Path: path}, &d)
		// web is denied /admin and everything under it, however spelled:
		// whatever reaches the app must not resolve to /admin.
		if d.Status == 0 {
			p := path
			if i := strings.IndexAny(p, "?#"); i >= 0 {
				p = p[:i]
			}
			if p == "/admin" || strings.HasPrefix(p, "/admin/") || strings.Contains(strings.ToLower(p), "%") || strings.Contains(p, "/../") || strings.Contains(p, "//") {
				t.Errorf("%q was let through", path)
			}
		}
	})
}
