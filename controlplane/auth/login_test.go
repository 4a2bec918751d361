package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/controlplane/auth"
)

func TestLoginWithRealSDK(t *testing.T) {
	e := newEnv(t)
	res, err := e.login(e.sdkToken(e.cred))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	c, err := e.tokens.VerifyDataplaneToken(context.Background(), res.Token)
	if err != nil {
		t.Fatalf("the issued token does not verify: %v", err)
	}
	if c.Mesh != "default" || c.Name != "web-1" || c.SPIFFEID != "spiffe://default.mesh.local/workload/web" || c.RoleID != e.role.RoleID || c.RoleARN != e.role.ARN {
		t.Fatalf("claims = %+v", c)
	}
	if res.Identity.Account != acct || res.Identity.Region != "us-east-1" || res.Identity.Session != session || !res.ExpiresAt.Equal(c.ExpiresAt) {
		t.Fatalf("identity = %+v", res.Identity)
	}
	if n := e.stored()[auth.KindLoginSignature]; n != 1 {
		t.Fatalf("%d signature records, want 1", n)
	}
}

func TestBootstrapLoginWithECSVerification(t *testing.T) {
	e := newEnv(t)
	e.cfg.VerifyECSTask = true
	e.rebuild()
	dp := *e.dp
	dp.Name = "web-2"
	res, err := e.v.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: "web-2", LoginToken: e.sdkToken(e.cred)}, &dp)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if res.Identity.Zone != "us-east-1a" || !strings.HasSuffix(res.Identity.Cluster, "cluster/prod") {
		t.Fatalf("identity = %+v", res.Identity)
	}
}

func TestLoginHandler(t *testing.T) {
	e := newEnv(t)
	h := e.v.LoginHandler()
	post := func(body []byte) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/auth/aws-iam/login", bytes.NewReader(body)))
		return w
	}
	body, _ := json.Marshal(map[string]string{"mesh": "default", "name": "web-1", "proxyType": "dataplane", "loginToken": e.sdkToken(e.cred)})
	w := post(body)
	var out struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expiresAt"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &out) != nil || out.Token == "" || out.ExpiresAt == "" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = post(body)
	if w.Code != 401 || !strings.Contains(w.Body.String(), `"reason":"login_replayed"`) {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	if w = post(bytes.Repeat([]byte("a"), auth.MaxLoginBody+1)); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", w.Code)
	}
	if w = post([]byte(`{"mesh":"default","bogus":1}`)); w.Code != 400 {
		t.Fatalf("unknown field: %d", w.Code)
	}
	if got := logins(t, e.v, "success", ""); got != 1 {
		t.Fatalf("success count = %v", got)
	}
	if got := logins(t, e.v, "refused", auth.ReasonReplayed); got != 1 {
		t.Fatalf("replay count = %v", got)
	}
}

// logins reads ecsmesh_logins_total{result,reason}.
func logins(t *testing.T, v *auth.Verifier, result, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(v.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ecsmesh_logins_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["result"] == result && l["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestReplayAcrossReplicas: two CP replicas on one store accept a signed
// login once.
func TestReplayAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	other, err := auth.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := e.sdkToken(e.cred)
	if _, err := e.login(tok); err != nil {
		t.Fatal(err)
	}
	_, err = other.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: "web-1", LoginToken: tok}, nil)
	wantProblem(t, err, 401, auth.ReasonReplayed)
}

// TestRoleRecreatedWhileCached: a role re-created after its GetRole answer
// was cached is looked up again for credentials of the new role, and the
// old role's credentials are refused.
func TestRoleRecreatedWhileCached(t *testing.T) {
	e := newEnv(t)
	if _, err := e.login(e.sdkToken(e.cred)); err != nil {
		t.Fatal(err)
	}
	e.cloud.IAM.PutRole(acct, "web", defaultTags)
	newCred, err := e.cloud.STS.AssumeRole(acct, "web", session, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.login(e.token(signed{cred: newCred.AWS()})); err != nil {
		t.Fatalf("new role's credentials: %v", err)
	}
	_, err = e.login(e.token(signed{}))
	wantProblem(t, err, 403, auth.ReasonRoleIDMismatch)
}
