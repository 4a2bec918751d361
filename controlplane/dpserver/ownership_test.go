package dpserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/dpserver"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// roleAuth admits every login as the role named in the login token (a
// stand-in for a login that passed every check of auth, so that the
// store-time ownership check is what is tested).
type roleAuth struct{ tokens *token.Issuer }

func (a roleAuth) Authenticate(ctx context.Context, req auth.LoginRequest, dp *resource.Dataplane) (*auth.Result, error) {
	role := req.LoginToken
	id := "spiffe://default.mesh.local/workload/" + role
	raw, c, err := a.tokens.IssueDataplaneToken(ctx, token.DataplaneClaims{Mesh: req.Mesh, Name: req.Name, SPIFFEID: id, RoleARN: "arn:aws:iam::111122223333:role/" + role, RoleID: "AROA" + strings.ToUpper(role), ProxyType: "dataplane"})
	if err != nil {
		return nil, err
	}
	return &auth.Result{Token: raw, ExpiresAt: c.ExpiresAt, Identity: auth.Identity{
		SPIFFEID: id, RoleARN: "arn:aws:iam::111122223333:role/" + role, RoleID: "AROA" + strings.ToUpper(role), ProxyType: "dataplane"}}, nil
}

func ownershipServer(t *testing.T) (*env, *dpserver.Server) {
	t.Helper()
	e := newEnv(t, false, false)
	s, err := dpserver.New(dpserver.Config{Store: e.store, Tokens: e.tokens, Auth: roleAuth{e.tokens}, XDSPort: func() int { return 5679 }})
	if err != nil {
		t.Fatal(err)
	}
	return e, s
}

func bootstrapAs(s *dpserver.Server, role, yaml string) error {
	_, err := s.Bootstrap(context.Background(), dpapi.BootstrapRequest{ProxyType: "dataplane", LoginToken: role, DataplaneResource: yaml}, "cp.local")
	return err
}

// The stored Dataplane records its owner, and only that role may write it
// again: the store-time check holds even when the login's own check
// raced (it ran before STS answered).
func TestBootstrapOwnership(t *testing.T) {
	e, s := ownershipServer(t)
	if err := bootstrapAs(s, "web", dpYAML); err != nil {
		t.Fatal(err)
	}
	dp := e.dataplane(t)
	if dp.Owner == nil || dp.Owner.RoleID != "AROAWEB" || dp.Owner.SPIFFEID != "spiffe://default.mesh.local/workload/web" || dp.Owner.ProxyType != "dataplane" {
		t.Fatalf("owner %+v", dp.Owner)
	}
	before, _ := e.store.Get(context.Background(), store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"})
	// Another role, even one admitted for the same services.
	err := bootstrapAs(s, "redis", strings.Replace(dpYAML, "10.0.1.23", "10.6.6.6", 1))
	var p *problem.Problem
	if !asProblem(err, &p) || p.Status != 409 || p.Reason != auth.ReasonDataplaneOwned {
		t.Fatalf("takeover: %v", err)
	}
	after, _ := e.store.Get(context.Background(), store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"})
	if after.Version != before.Version {
		t.Fatal("the refused bootstrap wrote the Dataplane")
	}
	// The owner re-registers (a restarted task of the same role).
	if err := bootstrapAs(s, "web", strings.Replace(dpYAML, "10.0.1.23", "10.0.1.24", 1)); err != nil {
		t.Fatalf("owner's re-bootstrap: %v", err)
	}
	if dp := e.dataplane(t); dp.Networking.Address != "10.0.1.24" || dp.Owner.RoleID != "AROAWEB" {
		t.Fatalf("after re-bootstrap: %+v", dp)
	}
}

// An operator's Dataplane cannot be replaced through /bootstrap.
func TestBootstrapOverOperatorDataplane(t *testing.T) {
	e, s := ownershipServer(t)
	obj, _, err := resource.DecodeOne([]byte(dpYAML))
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := resource.Marshal(obj)
	if _, err := store.CreateRecord(context.Background(), e.store, store.Record{Key: store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	err = bootstrapAs(s, "web", strings.Replace(dpYAML, "10.0.1.23", "10.6.6.6", 1))
	var p *problem.Problem
	if !asProblem(err, &p) || p.Reason != auth.ReasonDataplaneOwned {
		t.Fatalf("bootstrap over the operator's Dataplane: %v", err)
	}
	if dp := e.dataplane(t); dp.Networking.Address != "10.0.1.23" || dp.Owner != nil {
		t.Fatalf("operator Dataplane became %+v", dp)
	}
}

// Two roles racing for a free name: exactly one owns it.
func TestBootstrapRaceForAName(t *testing.T) {
	e, s := ownershipServer(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = bootstrapAs(s, []string{"web", "redis"}[i%2], dpYAML)
		}()
	}
	wg.Wait()
	winner := e.dataplane(t).Owner.RoleID
	for i, err := range errs {
		role := "AROA" + strings.ToUpper([]string{"web", "redis"}[i%2])
		if (role == winner) != (err == nil) {
			t.Fatalf("bootstrap %d as %s: %v (owner %s)", i, role, err, winner)
		}
	}
}

// Every body of the sidecar API refuses keys that differ from the fields'
// names only in case, duplicate keys and trailing data; so does the
// Dataplane resource it carries.
func TestBootstrapStrictBody(t *testing.T) {
	_, s := ownershipServer(t)
	mux := http.NewServeMux()
	for p, h := range s.Handlers() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	quoted := strings.ReplaceAll(strings.ReplaceAll(dpYAML, "\n", `\n`), `"`, `\"`)
	for _, body := range []string{
		`{"mesh":"default","name":"redis-1","NAME":"web-1","loginToken":"web","dataplaneResource":"` + quoted + `"}`,
		`{"Mesh":"default","loginToken":"web","dataplaneResource":"` + quoted + `"}`,
		`{"loginToken":"web","loginToken":"redis","dataplaneResource":"` + quoted + `"}`,
		`{"loginToken":"web","dataplaneResource":"` + quoted + `","version":{"EcsmeshDp":{"version":"1"}}}`,
		`{"loginToken":"web","dataplaneResource":"` + quoted + `"}{}`,
		`{"loginToken":"web","dataplaneResource":"{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":\"web-1\",\"NAME\":\"redis-1\",\"networking\":{\"address\":\"10.0.0.1\",\"inbound\":[{\"port\":1,\"tags\":{\"kuma.io/service\":\"web\"}}]}}"}`,
	} {
		resp, err := http.Post(srv.URL+"/bootstrap", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("HTTP %d for %s", resp.StatusCode, body)
		}
	}
}

func asProblem(err error, p **problem.Problem) bool {
	q, ok := err.(*problem.Problem)
	*p = q
	return ok
}
