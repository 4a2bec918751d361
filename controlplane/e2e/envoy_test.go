// TestEnvoyEndToEnd needs a real Envoy with the Wasm (V8) runtime: it runs
// only when ENVOY_BIN names that binary, and SKIPS otherwise — the one
// skip allowed in this package (no Envoy exists where ecsmesh is built; see
// README "What was and was not run against Envoy").
//
// The CP tells Envoy to load the filter built by this test
// (ECSMESH_FILTER_WASM_PATH), so nothing has to be installed.

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/cp"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
)

// TestEnvoyEndToEnd runs a CP (in-process, proxy type none, loopback) and
// two real Envoys bootstrapped through POST /bootstrap, for services web
// (127.0.0.2, with listeners on every service's VIP) and redis
// (127.0.0.3), each in front of a tiny HTTP app on 127.0.0.1. A request
// from web's side of the host (the test plays web's app, as everything
// shares loopback) to redis's VIP:8080 must cross web's outbound listener
// and filter, mTLS, redis's inbound listener and filter, and reach the
// redis app with 200 and x-ecsmesh-peer-id = web's SPIFFE ID.
func TestEnvoyEndToEnd(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set: no Envoy binary with the Wasm runtime; set ENVOY_BIN=/path/to/envoy to run this test")
	}
	wasm := buildFilter(t)
	srv, dataDir := startInProcessCP(t, wasm)
	admin := "http://" + srv.Addrs().Admin
	if status, body, err := httpDo(http.MethodPost, admin+"/apply", "type: Mesh\nname: default\n"); err != nil || status != http.StatusOK {
		t.Fatalf("applying the mesh: %d %s %v", status, body, err)
	}
	redisApp := startApp(t, "redis")
	webApp := startApp(t, "web")
	sidecars := []struct {
		name, service, address string
		app                    *app
		bindOutbounds          bool
	}{
		{name: "web-1", service: "web", address: "127.0.0.2", app: webApp, bindOutbounds: true},
		{name: "redis-1", service: "redis", address: "127.0.0.3", app: redisApp},
	}
	spiffe := map[string]string{}
	for _, s := range sidecars {
		dp := fmt.Sprintf(`type: Dataplane
mesh: default
name: %s
labels: {kuma.io/workload: %s}
networking:
  address: %s
  inbound:
  - port: %d
    servicePort: %d
    tags: {kuma.io/service: %s, kuma.io/protocol: http}
`, s.name, s.service, s.address, freePort(t, s.address), s.app.port, s.service)
		resp := bootstrapSidecar(t, srv.Addrs().API, dataDir, dpapi.BootstrapRequest{
			Mesh: "default", Name: s.name, DataplaneResource: dp, Host: "127.0.0.1",
			CACertPath: filepath.Join(dataDir, cp.CACertFile), AdminPort: freePort(t, "127.0.0.1"), BindOutbounds: s.bindOutbounds,
		})
		spiffe[s.service] = resp.SPIFFEID
		runEnvoy(t, envoyBin, s.name, resp.Bootstrap)
	}
	if spiffe["web"] == "" {
		spiffe["web"] = "spiffe://default.mesh.local/workload/web"
	}

	var redisVIP netip.Addr
	waitFor(t, settleDeadline, "a VIP for redis", func() (bool, string) {
		a, err := vip.Lookup(t.Context(), srv.Store(), "default", "redis")
		redisVIP = a
		return err == nil, fmt.Sprint(err)
	})
	target := "http://" + net.JoinHostPort(redisVIP.String(), "8080") + "/hello"
	// Envoy receives listeners, clusters, secrets and the filter over ADS
	// asynchronously: poll until the route works (a generous deadline).
	waitFor(t, settleDeadline, "GET "+target+" through both Envoys = 200", func() (bool, string) {
		status, body, err := httpDo(http.MethodGet, target, "")
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusOK, fmt.Sprintf("%d %s", status, body)
	})
	got := redisApp.lastPeer()
	if got != spiffe["web"] {
		t.Errorf("x-ecsmesh-peer-id at the redis app = %q, want %q", got, spiffe["web"])
	}

	// Traffic policies: Envoy must accept what each kind generates. The
	// route's header reaching the app proves web's VIP listener (with the
	// policy route, retry policy and timeouts) and redis's cluster (with
	// circuit breakers, outlier detection and a health check) were taken.
	for _, doc := range trafficPolicies {
		if status, body, err := httpDo(http.MethodPost, admin+"/apply", doc); err != nil || status != http.StatusOK {
			t.Fatalf("applying a policy: %d %s %v", status, body, err)
		}
	}
	waitFor(t, settleDeadline, "GET "+target+" through the policy route = 200 with x-route-policy", func() (bool, string) {
		status, body, err := httpDo(http.MethodGet, target, "")
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusOK && redisApp.lastRoute() == "canary", fmt.Sprintf("%d %s, x-route-policy %q", status, body, redisApp.lastRoute())
	})
	// A fault on redis's inbound for every caller: 418 from redis's Envoy.
	if status, body, err := httpDo(http.MethodPost, admin+"/apply", abortFault); err != nil || status != http.StatusOK {
		t.Fatalf("applying the fault: %d %s %v", status, body, err)
	}
	waitFor(t, settleDeadline, "GET "+target+" = 418 from the fault filter", func() (bool, string) {
		status, body, err := httpDo(http.MethodGet, target, "")
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusTeapot, fmt.Sprintf("%d %s", status, body)
	})
}

// trafficPolicies configure web's calls to redis with one policy of each
// outbound kind; abortFault aborts every call arriving at redis.
var (
	trafficPolicies = []string{`type: MeshTimeout
mesh: default
name: web-to-redis
spec:
  targetRef: {kind: MeshService, name: web}
  to: [{targetRef: {kind: MeshService, name: redis}, default: {connectionTimeout: 2s, idleTimeout: 10m, http: {requestTimeout: 5s, streamIdleTimeout: 1m}}}]
`, `type: MeshRetry
mesh: default
name: web-to-redis
spec:
  targetRef: {kind: MeshService, name: web}
  to: [{targetRef: {kind: MeshService, name: redis}, default: {http: {numRetries: 2, retryOn: [5xx, ConnectFailure]}}}]
`, `type: MeshCircuitBreaker
mesh: default
name: web-to-redis
spec:
  targetRef: {kind: MeshService, name: web}
  to: [{targetRef: {kind: MeshService, name: redis}, default: {connectionLimits: {maxConnections: 100}, outlierDetection: {detectors: {totalFailures: {consecutive: 5}}}}}]
`, `type: MeshHealthCheck
mesh: default
name: web-to-redis
spec:
  targetRef: {kind: MeshService, name: web}
  to: [{targetRef: {kind: MeshService, name: redis}, default: {interval: 5s, timeout: 2s, http: {path: /hello}}}]
`, `type: MeshHTTPRoute
mesh: default
name: web-to-redis
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: redis}
    rules:
    - matches: [{path: {type: PathPrefix, value: /hello}}]
      default:
        filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-route-policy, value: canary}]}}]
        backendRefs: [{kind: MeshService, name: redis}]
`}
	abortFault = `type: MeshFaultInjection
mesh: default
name: redis-abort
spec:
  targetRef: {kind: MeshService, name: redis}
  from: [{targetRef: {kind: Mesh}, default: {http: [{abort: {httpStatus: 418, percentage: 100}}]}}]
`
)

// buildFilter returns the proxy-wasm filter: ECSMESH_FILTER_WASM when set
// (make test builds build/ecsmesh-filter.wasm), else built here like
// `make wasm` into a temporary directory.
func buildFilter(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ECSMESH_FILTER_WASM"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "ecsmesh-filter.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./filter/cmd/wasm")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the wasm filter: %v\n%s", err, b)
	}
	return out
}

// startInProcessCP runs cp.New+Run on loopback with proxy type none and the
// memory store, logging into a buffer printed if the test fails.
func startInProcessCP(t *testing.T, wasm string) (*cp.Server, string) {
	t.Helper()
	dataDir := t.TempDir()
	env := map[string]string{
		"KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none",
		"KUMA_STORE_TYPE":                    "memory",
		"ECSMESH_DATA_DIR":                   dataDir,
		"ECSMESH_API_ADDR":                   "127.0.0.1:0",
		"ECSMESH_XDS_ADDR":                   "127.0.0.1:0",
		"ECSMESH_ADMIN_ADDR":                 "127.0.0.1:0",
		"ECSMESH_INSTANCE_ID":                "cp-envoy-e2e",
		"ECSMESH_FILTER_WASM_PATH":           wasm,
	}
	cfg, err := config.Load(config.Flags{}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := cp.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("CP Run: %v", err)
		}
		if t.Failed() {
			t.Logf("---- CP log ----\n%s", logs.String())
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		done <- err
		t.Fatalf("CP stopped at start: %v", err)
	case <-time.After(startDeadline):
		t.Fatal("CP did not become ready")
	}
	return srv, dataDir
}

// bootstrapSidecar calls POST /bootstrap on the sidecar API (HTTPS, the
// CP's own CA) and returns the answer.
func bootstrapSidecar(t *testing.T, apiAddr, dataDir string, req dpapi.BootstrapRequest) dpapi.BootstrapResponse {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dataDir, cp.CACertFile))
	if err != nil {
		t.Fatalf("the CP's CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", cp.CACertFile)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	body, _ := json.Marshal(req)
	resp, err := client.Post("https://"+apiAddr+"/bootstrap", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /bootstrap for %s: %v", req.Name, err)
	}
	defer resp.Body.Close()
	var out dpapi.BootstrapResponse
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /bootstrap for %s: %d %s %v", req.Name, resp.StatusCode, raw, err)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// runEnvoy writes the bootstrap and runs Envoy on it until the test ends
// (SIGTERM, then SIGKILL).
func runEnvoy(t *testing.T, bin, name string, bootstrap any) {
	t.Helper()
	js, err := json.Marshal(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+"-bootstrap.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "--config-path", path, "--disable-hot-restart", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Envoy (ENVOY_BIN=%s): %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("---- Envoy %s (bootstrap %s) ----\n%s", name, js, logs.String())
		}
	})
}

// app is a tiny HTTP application on 127.0.0.1 recording the peer identity
// header of the requests it serves.
type app struct {
	port  int
	mu    sync.Mutex
	peer  string
	route string
}

func startApp(t *testing.T, service string) *app {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &app{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.peer = r.Header.Get("x-ecsmesh-peer-id")
		a.route = r.Header.Get("x-route-policy")
		a.mu.Unlock()
		_, _ = fmt.Fprintf(w, "hello from %s\n", service)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return a
}

func (a *app) lastRoute() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.route
}

func (a *app) lastPeer() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.peer
}

// freePort returns a port free on host at the time of the call.
func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("no free port on %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestEnvoyEndToEndPoliciesDecode keeps the policies TestEnvoyEndToEnd
// applies valid where no Envoy runs.
func TestEnvoyEndToEndPoliciesDecode(t *testing.T) {
	for _, doc := range append(trafficPolicies, abortFault) {
		if _, _, err := resource.DecodeOne([]byte(doc)); err != nil {
			t.Errorf("%v\n%s", err, doc)
		}
	}
}
