package metrics

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
)

const envoyStats = `# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 7
# TYPE envoy_cluster_upstream_cx_active gauge
envoy_cluster_upstream_cx_active{envoy_cluster_name="backend"} 2
# TYPE envoy_http_downstream_rq_total counter
envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="inbound",service="spoofed"} 11
`

const appStats = `# HELP orders_total Orders.
# TYPE orders_total counter
orders_total{mesh="app-mesh",exported_mesh="taken"} 3
# TYPE process_open_fds gauge
process_open_fds 9
`

// fakeSource serves body on path and records the queries it got; down
// answers 500.
type fakeSource struct {
	mu      sync.Mutex
	body    string
	path    string
	queries []string
	down    bool
}

func (f *fakeSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, r.URL.RawQuery)
	if f.down || r.URL.Path != f.path {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, f.body)
}

func (f *fakeSource) set(down bool, body string) {
	f.mu.Lock()
	f.down, f.body = down, body
	f.mu.Unlock()
}

func portOf(t *testing.T, u string) (string, int) {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p.Port())
	return p.Hostname(), port
}

type env struct {
	srv     *Server
	envoy   *fakeSource
	app     *fakeSource
	appHost string
	appPort int
	asked   []string // addresses Apply listened on
	reg     *prometheus.Registry
}

func newEnv(t *testing.T) *env { return newEnvCap(t, 0) }

func newEnvCap(t *testing.T, maxBytes int64) *env {
	t.Helper()
	e := &env{envoy: &fakeSource{path: "/stats/prometheus", body: envoyStats}, app: &fakeSource{path: "/metrics/prometheus", body: appStats}}
	ts := httptest.NewServer(e.envoy)
	t.Cleanup(ts.Close)
	as := httptest.NewServer(e.app)
	t.Cleanup(as.Close)
	_, adminPort := portOf(t, ts.URL)
	e.appHost, e.appPort = portOf(t, as.URL)
	e.reg = prometheus.NewRegistry()
	own := prometheus.NewCounter(prometheus.CounterOpts{Name: "ecsmesh_dp_envoy_starts_total", Help: "h"})
	own.Inc()
	e.reg.MustRegister(own)
	var mu sync.Mutex
	srv, err := New(Config{Gatherer: e.reg, Registerer: e.reg, AdminPort: func() int { return adminPort }, MaxBytes: maxBytes,
		Listen: func(network, addr string) (net.Listener, error) {
			mu.Lock()
			e.asked = append(e.asked, addr)
			mu.Unlock()
			return net.Listen(network, "127.0.0.1:0")
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e.srv = srv
	return e
}

func (e *env) conf() *dpapi.Metrics {
	return &dpapi.Metrics{Port: 5670, Path: "/metrics", AllEnvoy: true,
		Applications: []dpapi.MetricsApplication{{Name: "orders", Address: e.appHost, Port: e.appPort, Path: "/metrics/prometheus"}},
		Labels:       dpapi.MetricsLabels{Mesh: "default", Service: "web", Workload: "web-wl"}}
}

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, l+"\n") {
			t.Errorf("missing line %q in:\n%s", l, body)
		}
	}
}

// TestScrapeMergesAndLabels: one scrape holds Envoy's stats, the app's and
// the agent's, every series labelled with mesh, service and workload; a
// series' own mesh/service label is kept as exported_<label>.
func TestScrapeMergesAndLabels(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.Apply(e.conf()); err != nil {
		t.Fatal(err)
	}
	if len(e.asked) != 1 || e.asked[0] != "0.0.0.0:5670" {
		t.Fatalf("listened on %v, want 0.0.0.0:5670", e.asked)
	}
	status, body := get(t, e.srv.Addr(), "/metrics")
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	const l = `mesh="default",service="web",workload="web-wl"`
	wantLines(t, body,
		`envoy_cluster_upstream_rq_total{envoy_cluster_name="backend",`+l+`} 7`,
		`envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="inbound",exported_service="spoofed",mesh="default",service="web",workload="web-wl"} 11`,
		`orders_total{exported_exported_mesh="app-mesh",exported_mesh="taken",mesh="default",service="web",workload="web-wl"} 3`,
		`process_open_fds{`+l+`} 9`,
		`ecsmesh_dp_envoy_starts_total{`+l+`} 1`,
		"# TYPE envoy_cluster_upstream_rq_total counter",
	)
	if strings.Contains(body, "skipped") {
		t.Errorf("a source was skipped:\n%s", body)
	}
	if got := e.envoy.queries[len(e.envoy.queries)-1]; got != "usedonly" {
		t.Errorf("envoy query %q, want usedonly", got)
	}
	if status, _ := get(t, e.srv.Addr(), "/stats/prometheus"); status != 404 {
		t.Errorf("another path answered %d, want 404 (Envoy's admin is never exposed)", status)
	}
}

// TestScrapeSourceDown: a failing source (Envoy down, an app answering 500
// or too much) is left out and counted; the rest is served.
func TestScrapeSourceDown(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.Apply(e.conf()); err != nil {
		t.Fatal(err)
	}
	e.envoy.set(true, "")
	status, body := get(t, e.srv.Addr(), "/metrics")
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	wantLines(t, body, "# ecsmesh: source envoy skipped: HTTP 500",
		`ecsmesh_dp_metrics_scrape_errors_total{mesh="default",service="web",source="envoy",workload="web-wl"} 1`)
	if !strings.Contains(body, "orders_total{") || strings.Contains(body, "envoy_cluster_upstream_rq_total{") {
		t.Errorf("want the app's series and not Envoy's:\n%s", body)
	}
	e.envoy.set(false, envoyStats)
	e.app.set(false, "not { prometheus")
	_, body = get(t, e.srv.Addr(), "/metrics")
	if !strings.Contains(body, "# ecsmesh: source app/orders skipped: parsing:") {
		t.Errorf("an unparsable app is not reported:\n%s", body)
	}

	e = newEnvCap(t, int64(len(envoyStats)))
	if err := e.srv.Apply(e.conf()); err != nil {
		t.Fatal(err)
	}
	e.app.set(false, appStats+strings.Repeat("# padding\n", len(envoyStats)/10))
	_, body = get(t, e.srv.Addr(), "/metrics")
	wantLines(t, body, fmt.Sprintf("# ecsmesh: source app/orders skipped: response exceeds %d bytes", len(envoyStats)),
		`ecsmesh_dp_metrics_scrape_errors_total{mesh="default",service="web",source="app/orders",workload="web-wl"} 1`)
	if strings.Contains(body, "orders_total{") || !strings.Contains(body, "envoy_cluster_upstream_rq_total{") {
		t.Errorf("want Envoy's series and not the app's:\n%s", body)
	}
}

// TestEnvoyFilters: profile None with include, and All with exclude
// (include wins), filter Envoy's families only; includeUnused drops
// usedonly.
func TestEnvoyFilters(t *testing.T) {
	e := newEnv(t)
	c := e.conf()
	c.AllEnvoy = false
	c.IncludeUnused = true
	c.Include = []dpapi.MetricMatch{{Type: "Regex", Match: "^envoy_http_.*_total$"}}
	if err := e.srv.Apply(c); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, e.srv.Addr(), "/metrics")
	if strings.Contains(body, "envoy_cluster_") || !strings.Contains(body, "envoy_http_downstream_rq_total{") || !strings.Contains(body, "orders_total{") {
		t.Errorf("None + include envoy_http_: %s", body)
	}
	if got := e.envoy.queries[len(e.envoy.queries)-1]; got != "" {
		t.Errorf("envoy query %q with includeUnused, want none", got)
	}
	c.AllEnvoy = true
	c.Include = []dpapi.MetricMatch{{Type: "Contains", Match: "upstream_rq"}}
	c.Exclude = []dpapi.MetricMatch{{Type: "Prefix", Match: "envoy_cluster_"}}
	if err := e.srv.Apply(c); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, e.srv.Addr(), "/metrics")
	if strings.Contains(body, "envoy_cluster_upstream_cx_active") || !strings.Contains(body, "envoy_cluster_upstream_rq_total{") || !strings.Contains(body, "envoy_http_downstream_rq_total{") {
		t.Errorf("All - envoy_cluster_ + upstream_rq: %s", body)
	}
}

// TestApplyFollowsConfig: the listener opens on the first config, keeps
// serving through a path change, moves when the port changes, and closes
// when the config goes away.
func TestApplyFollowsConfig(t *testing.T) {
	e := newEnv(t)
	c := e.conf()
	if err := e.srv.Apply(c); err != nil {
		t.Fatal(err)
	}
	first := e.srv.Addr()
	c2 := *c
	c2.Path = "/stats"
	if err := e.srv.Apply(&c2); err != nil {
		t.Fatal(err)
	}
	if e.srv.Addr() != first || len(e.asked) != 1 {
		t.Fatalf("a path change reopened the listener: %v", e.asked)
	}
	if status, _ := get(t, first, "/stats"); status != 200 {
		t.Errorf("new path answered %d", status)
	}
	if status, _ := get(t, first, "/metrics"); status != 404 {
		t.Errorf("old path answered %d, want 404", status)
	}
	c2.Port = 9102
	if err := e.srv.Apply(&c2); err != nil {
		t.Fatal(err)
	}
	if len(e.asked) != 2 || e.asked[1] != "0.0.0.0:9102" {
		t.Fatalf("listened on %v, want a move to 0.0.0.0:9102", e.asked)
	}
	if _, err := http.Get("http://" + first + "/stats"); err == nil {
		t.Errorf("the old listener %s still answers", first)
	}
	if err := e.srv.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if e.srv.Addr() != "" {
		t.Errorf("listener %s left open without a config", e.srv.Addr())
	}
	bad := *c
	bad.Include = []dpapi.MetricMatch{{Type: "Glob", Match: "*"}}
	if err := e.srv.Apply(&bad); err == nil {
		t.Error("an unknown match type from the control plane was applied")
	}
}

// TestDuplicateSeriesDropped: two apps exporting the same series (same
// labels once relabelled) do not produce a duplicate Prometheus refuses.
func TestDuplicateSeriesDropped(t *testing.T) {
	e := newEnv(t)
	c := e.conf()
	c.Applications = append(c.Applications, dpapi.MetricsApplication{Name: "orders-again", Address: e.appHost, Port: e.appPort, Path: "/metrics/prometheus"})
	if err := e.srv.Apply(c); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, e.srv.Addr(), "/metrics")
	if n := strings.Count(body, "\nprocess_open_fds{"); n != 1 {
		t.Errorf("process_open_fds appears %d times, want 1:\n%s", n, body)
	}
	wantLines(t, body, "# ecsmesh: family process_open_fds: 1 duplicate series dropped (two sources with the same labels)")
}
