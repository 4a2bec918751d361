package dpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/dpserver"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

const dpYAML = `type: Dataplane
mesh: default
name: web-1
labels: {kuma.io/workload: web}
networking:
  address: 10.0.1.23
  inbound:
  - {port: 15000, servicePort: 8080, tags: {kuma.io/service: web, kuma.io/protocol: http}}
  - {port: 15001, servicePort: 9090, tags: {kuma.io/service: web-admin}}
`

type env struct {
	store  *memory.Store
	tokens *token.Issuer
	srv    *httptest.Server
	server *dpserver.Server
	auth   *fakeAuth
}

// fakeAuth records what it was asked and answers err or a token.
type fakeAuth struct {
	mu     sync.Mutex
	err    error
	tokens *token.Issuer
	seen   []*resource.Dataplane
}

func (f *fakeAuth) Authenticate(ctx context.Context, req auth.LoginRequest, dp *resource.Dataplane) (*auth.Result, error) {
	f.mu.Lock()
	f.seen = append(f.seen, dp)
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	raw, c, err := f.tokens.IssueDataplaneToken(ctx, token.DataplaneClaims{Mesh: req.Mesh, Name: req.Name, SPIFFEID: "spiffe://default.mesh.local/workload/web"})
	if err != nil {
		return nil, err
	}
	return &auth.Result{Token: raw, ExpiresAt: c.ExpiresAt, Identity: auth.Identity{SPIFFEID: "spiffe://default.mesh.local/workload/web"}}, nil
}

func newEnv(t *testing.T, withAuth, reloadable bool) *env {
	t.Helper()
	st := memory.New(nil)
	t.Cleanup(func() { st.Close() })
	tokens, err := token.New(token.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateRecord(context.Background(), st, store.Record{Key: store.Key{Kind: resource.KindMesh, Name: "default"}, Spec: []byte(`{"type":"Mesh","name":"default"}`)}); err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, tokens: tokens}
	cfg := dpserver.Config{Store: st, Tokens: tokens, ReloadableTokens: reloadable, XDSPort: func() int { return 5679 }}
	if withAuth {
		e.auth = &fakeAuth{tokens: tokens}
		cfg.Auth = e.auth
	}
	s, err := dpserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.server = s
	mux := http.NewServeMux()
	for p, h := range s.Handlers() {
		mux.Handle(p, h)
	}
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) post(t *testing.T, path, bearer string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(b))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func (e *env) dataplane(t *testing.T) *resource.Dataplane {
	t.Helper()
	rec, err := e.store.Get(context.Background(), store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := resource.Unmarshal(resource.KindDataplane, rec.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*resource.Dataplane)
}

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name       string
		auth       bool
		reloadable bool
		authErr    error
		req        dpapi.BootstrapRequest
		status     int
		reason     string
		inBoot     []string
	}{
		{name: "none: token issued, inline", req: dpapi.BootstrapRequest{DataplaneResource: dpYAML, Host: "cp.local"}, status: 200,
			inBoot: []string{`"value":"Bearer `, `"cluster":"web"`, `"id":"default.web-1"`}},
		{name: "aws: reloadable token file", auth: true, reloadable: true, req: dpapi.BootstrapRequest{Mesh: "default", Name: "web-1", DataplaneResource: dpYAML, TokenPath: "/run/ecsmesh/token", CACertPath: "/ca.pem", BindOutbounds: true}, status: 200,
			inBoot: []string{envoybootstrap.FileBasedMetadata, "/run/ecsmesh/token", `"ecsmesh.io/bind-outbounds":"true"`, `"targetUri":"127.0.0.1:5679"`}},
		{name: "auth refusal passes through", auth: true, authErr: problem.New(403, "role_mesh_mismatch", "forbidden", "IAM role arn:aws:iam::1:role/web lacks tag kuma.io/mesh"),
			req: dpapi.BootstrapRequest{DataplaneResource: dpYAML}, status: 403, reason: "role_mesh_mismatch"},
		{name: "name mismatch", req: dpapi.BootstrapRequest{Name: "other", DataplaneResource: dpYAML}, status: 400, reason: dpserver.ReasonInvalidRequest},
		{name: "invalid dataplane", req: dpapi.BootstrapRequest{DataplaneResource: "type: Dataplane\nmesh: default\nname: x\n"}, status: 400, reason: dpserver.ReasonInvalidDataplane},
		{name: "not a dataplane", req: dpapi.BootstrapRequest{DataplaneResource: "type: Mesh\nname: x\n"}, status: 400, reason: dpserver.ReasonInvalidDataplane},
		{name: "empty", req: dpapi.BootstrapRequest{}, status: 400, reason: dpserver.ReasonInvalidRequest},
		{name: "unknown mesh (none)", req: dpapi.BootstrapRequest{DataplaneResource: strings.Replace(dpYAML, "mesh: default", "mesh: nope", 1)}, status: 404, reason: dpserver.ReasonMeshNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.auth, tt.reloadable)
			if e.auth != nil {
				e.auth.err = tt.authErr
			}
			status, body := e.post(t, "/bootstrap", "", tt.req)
			if status != tt.status {
				t.Fatalf("status %d, body %s", status, body)
			}
			if tt.status != 200 {
				p := problem.Decode(status, body)
				if p == nil || p.Reason != tt.reason {
					t.Fatalf("problem %s, want reason %s", body, tt.reason)
				}
				_, err := e.store.Get(context.Background(), store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"})
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("a refused bootstrap stored the Dataplane: %v", err)
				}
				return
			}
			var resp struct {
				Bootstrap        json.RawMessage
				Token            string
				ExpiresAt        time.Time
				ReloadableTokens bool
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.inBoot {
				if !bytes.Contains(resp.Bootstrap, []byte(s)) {
					t.Errorf("bootstrap lacks %s: %s", s, resp.Bootstrap)
				}
			}
			if _, err := envoybootstrap.Parse(resp.Bootstrap); err != nil {
				t.Fatal(err)
			}
			if resp.ReloadableTokens != tt.reloadable || resp.Token == "" || resp.ExpiresAt.IsZero() {
				t.Fatalf("resp = %+v", resp)
			}
			if _, err := e.tokens.VerifyDataplaneToken(context.Background(), resp.Token); err != nil {
				t.Fatal(err)
			}
			if dp := e.dataplane(t); dp.Labels[resource.LabelOrigin] != resource.OriginBootstrap || dp.Labels["kuma.io/workload"] != "web" {
				t.Fatalf("labels %v", dp.Labels)
			}
		})
	}
}

func TestBootstrapKeepsOperatorOrigin(t *testing.T) {
	e := newEnv(t, false, false)
	spec, _ := json.Marshal(map[string]any{"type": "Dataplane", "mesh": "default", "name": "web-1", "networking": map[string]any{"address": "10.0.0.9", "inbound": []any{map[string]any{"port": 1, "tags": map[string]string{"kuma.io/service": "web"}}}}})
	if _, err := store.CreateRecord(context.Background(), e.store, store.Record{Key: store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	withLabel := strings.Replace(dpYAML, "labels: {kuma.io/workload: web}", "labels: {kuma.io/workload: web, ecsmesh.io/origin: bootstrap}", 1)
	if status, body := e.post(t, "/bootstrap", "", dpapi.BootstrapRequest{DataplaneResource: withLabel}); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	dp := e.dataplane(t)
	if _, ok := dp.Labels[resource.LabelOrigin]; ok || dp.Networking.Address != "10.0.1.23" {
		t.Fatalf("operator Dataplane became %+v", dp)
	}
}

func TestHealthSync(t *testing.T) {
	e := newEnv(t, false, false)
	status, body := e.post(t, "/bootstrap", "", dpapi.BootstrapRequest{DataplaneResource: dpYAML})
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var boot dpapi.BootstrapResponse
	_ = json.Unmarshal(body, &boot)
	other, _, err := e.tokens.IssueDataplaneToken(context.Background(), token.DataplaneClaims{Mesh: "default", Name: "other", SPIFFEID: "spiffe://default.mesh.local/x"})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		bearer  string
		req     dpapi.HealthSyncRequest
		status  int
		states  []string
		changed bool
	}{
		{"no token", "", dpapi.HealthSyncRequest{Ready: true}, 401, nil, false},
		{"bad token", "x.y.z", dpapi.HealthSyncRequest{Ready: true}, 401, nil, false},
		{"someone else's token", other, dpapi.HealthSyncRequest{Mesh: "default", Name: "web-1", Ready: true}, 403, nil, false},
		{"ready, unchanged", boot.Token, dpapi.HealthSyncRequest{Mesh: "default", Name: "web-1", Ready: true}, 200, []string{"Ready", "Ready"}, false},
		{"one inbound unhealthy", boot.Token, dpapi.HealthSyncRequest{Ready: true, Inbounds: []dpapi.InboundHealth{{Port: 15001, Ready: false}}}, 200, []string{"Ready", "NotReady"}, true},
		{"all unhealthy", boot.Token, dpapi.HealthSyncRequest{Ready: false}, 200, []string{"NotReady", "NotReady"}, true},
		{"recovered", boot.Token, dpapi.HealthSyncRequest{Ready: true}, 200, []string{"Ready", "Ready"}, true},
		{"draining wins", boot.Token, dpapi.HealthSyncRequest{Ready: true, Draining: true}, 200, []string{"NotReady", "NotReady"}, true},
	}
	for _, s := range steps {
		status, body := e.post(t, "/v1/health-sync", s.bearer, s.req)
		if status != s.status {
			t.Fatalf("%s: status %d %s", s.name, status, body)
		}
		if status != 200 {
			continue
		}
		var resp dpapi.HealthSyncResponse
		_ = json.Unmarshal(body, &resp)
		dp := e.dataplane(t)
		for i, want := range s.states {
			if resp.Inbounds[i].State != want || (dp.Networking.Inbound[i].State != want && !(want == "Ready" && dp.Networking.Inbound[i].State == "")) {
				t.Fatalf("%s: inbound %d: resp %s stored %q, want %s", s.name, i, resp.Inbounds[i].State, dp.Networking.Inbound[i].State, want)
			}
		}
		if resp.Changed != s.changed {
			t.Fatalf("%s: changed = %v", s.name, resp.Changed)
		}
	}
	// Deleted (e.g. by the xDS liveness code): 404 tells the agent to bootstrap again.
	if err := store.DeleteRecord(context.Background(), e.store, store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"}, 0); err != nil {
		t.Fatal(err)
	}
	if status, body := e.post(t, "/v1/health-sync", boot.Token, dpapi.HealthSyncRequest{Ready: true}); status != 404 {
		t.Fatalf("after delete: %d %s", status, body)
	}
}

func TestHealthSyncConcurrentWriters(t *testing.T) {
	e := newEnv(t, false, false)
	if status, body := e.post(t, "/bootstrap", "", dpapi.BootstrapRequest{DataplaneResource: dpYAML}); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	s, _ := dpserver.New(dpserver.Config{Store: e.store, Tokens: e.tokens, XDSPort: func() int { return 1 }})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.HealthSync(context.Background(), dpapi.HealthSyncRequest{Mesh: "default", Name: "web-1", Ready: i%2 == 0})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.HealthSync(context.Background(), dpapi.HealthSyncRequest{Mesh: "default", Name: "web-1", Ready: false}); err != nil {
		t.Fatal(err)
	}
	if dp := e.dataplane(t); dp.Networking.Inbound[0].State != resource.StateNotReady {
		t.Fatalf("state %q", dp.Networking.Inbound[0].State)
	}
}
