package cp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store/pgtest"

	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// testConfig listens on free loopback ports.
func testConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	base := map[string]string{
		"ECSMESH_API_ADDR": "127.0.0.1:0", "ECSMESH_XDS_ADDR": "127.0.0.1:0", "ECSMESH_ADMIN_ADDR": "127.0.0.1:0",
		"ECSMESH_DATA_DIR": t.TempDir(), "ECSMESH_AWSIAM_SERVER_ID": "cp-test-" + t.Name(),
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.Load(config.Flags{}, func(k string) (string, bool) { v, ok := base[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type running struct {
	srv  *Server
	stop func()
}

// start runs a CP; each setup func may adjust the Server before Run.
func start(t *testing.T, cfg config.Config, setup ...func(*Server)) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, f := range setup {
		f(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("CP stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("CP did not become ready")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CP Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return running{srv: srv, stop: stop}
}

func (r running) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+r.srv.Addrs().Admin+path, strings.NewReader(body))
	if method != http.MethodGet {
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

const meshAndDataplane = "type: Mesh\nname: default\n---\ntype: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound: [{port: 15000, servicePort: 8080, tags: {kuma.io/service: web}}]\n"

func TestSQLiteRestartKeepsEveryResource(t *testing.T) {
	cfg := testConfig(t, nil)
	first := start(t, cfg)
	if status, body := first.do(t, "POST", "/apply", meshAndDataplane); status != 200 {
		t.Fatalf("apply: %d %s", status, body)
	}
	first.stop()
	second := start(t, cfg)
	status, body := second.do(t, "GET", "/meshes/default/dataplanes/web-1", "")
	if status != 200 || !strings.Contains(body, `"10.0.0.1"`) {
		t.Fatalf("after restart: %d %s", status, body)
	}
	if _, err := os.Stat(cfg.DataDir + "/" + CACertFile); err != nil {
		t.Errorf("CA file for agents: %v", err)
	}
}

func TestTwoCPsOnOnePostgres(t *testing.T) {
	pgEnv, _ := pgtest.CPEnv(t, "ecsmesh_cp_test_")
	env := map[string]string{}
	for _, kv := range pgEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	one := start(t, testConfig(t, env))
	two := start(t, testConfig(t, env))
	events, err := two.srv.Store().Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if status, body := one.do(t, "POST", "/apply", meshAndDataplane); status != 200 {
		t.Fatalf("apply through the first CP: %d %s", status, body)
	}
	// The second CP hears of it by LISTEN/NOTIFY (no polling in the
	// PostgreSQL store); the deadline is generous, not a timing assertion.
	deadline := time.After(15 * time.Second)
	for seen := false; !seen; {
		select {
		case e := <-events:
			seen = e.Key == store.Key{Kind: "Dataplane", Mesh: "default", Name: "web-1"}
		case <-deadline:
			t.Fatal("the second CP was not notified of the dataplane")
		}
	}
	if status, body := two.do(t, "GET", "/meshes/default/dataplanes/web-1", ""); status != 200 {
		t.Fatalf("through the second CP: %d %s", status, body)
	}
}

func TestHostnameTemplateErrorsRefusedAtApply(t *testing.T) {
	r := start(t, testConfig(t, nil))
	if status, body := r.do(t, "POST", "/apply", meshAndDataplane); status != 200 {
		t.Fatalf("apply: %d %s", status, body)
	}
	gen := "type: HostnameGenerator\nname: by-team\nspec:\n  template: '{{ .DisplayName }}.{{ label \"team\" }}.mesh.local'\n"
	status, body := r.do(t, "POST", "/apply", gen)
	if status != 400 || !strings.Contains(body, `"field":"spec.template"`) || !strings.Contains(body, "default/web") {
		t.Fatalf("a template failing for service web was accepted: %d %s", status, body)
	}
	if status, _ := r.do(t, "GET", "/hostnamegenerators/by-team", ""); status != 404 {
		t.Errorf("refused generator stored: %d", status)
	}
}

func TestMetricsExposeXDSAndRuntime(t *testing.T) {
	r := start(t, testConfig(t, nil))
	status, body := r.do(t, "GET", "/metrics", "")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	for _, want := range []string{"ecsmesh_xds_streams 0", "ecsmesh_xds_dataplanes_connected 0", "ecsmesh_xds_responses_total", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestRotateThroughTheAdminAPI(t *testing.T) {
	r := start(t, testConfig(t, nil))
	ctx := t.Context()
	if status, body := r.do(t, "POST", "/apply", "type: Mesh\nname: default\n"); status != 200 {
		t.Fatalf("apply: %d %s", status, body)
	}
	before, err := r.srv.CA().Bundle(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	jwksBefore, err := r.srv.Tokens().JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := r.do(t, "POST", "/meshes/default/rotate/ca", ""); status != 200 {
		t.Fatalf("rotate ca: %d %s", status, body)
	}
	after, err := r.srv.CA().Bundle(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Roots) != len(before.Roots)+1 {
		t.Errorf("trust bundle holds %d roots after rotation, want %d (old and new during the overlap)", len(after.Roots), len(before.Roots)+1)
	}
	status, body := r.do(t, "POST", "/meshes/default/rotate/signing-keys", "")
	if status != 200 || !strings.Contains(body, `"kids"`) {
		t.Fatalf("rotate signing-keys: %d %s", status, body)
	}
	jwksAfter, err := r.srv.Tokens().JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(jwksAfter), `"kid"`) <= strings.Count(string(jwksBefore), `"kid"`) {
		t.Errorf("the JWKS did not gain the new keys:\nbefore %s\nafter  %s", jwksBefore, jwksAfter)
	}
	for path, want := range map[string]int{"/meshes/default/rotate/everything": 404, "/meshes/nope/rotate/ca": 404} {
		if status, body := r.do(t, "POST", path, ""); status != want {
			t.Errorf("POST %s: %d %s, want %d", path, status, body, want)
		}
	}
}

func TestBusyAddressNamesItsVariableAndReleasesTheOthers(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	apiAddr, xdsAddr := freeAddr(t), freeAddr(t)
	cfg := testConfig(t, map[string]string{"ECSMESH_ADMIN_ADDR": busy.Addr().String(), "ECSMESH_API_ADDR": apiAddr, "ECSMESH_XDS_ADDR": xdsAddr})
	srv, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "ECSMESH_ADMIN_ADDR "+busy.Addr().String()) {
		t.Fatalf("Run = %v, want an error naming ECSMESH_ADMIN_ADDR", err)
	}
	for _, addr := range []string{apiAddr, xdsAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still held after the failed start: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
