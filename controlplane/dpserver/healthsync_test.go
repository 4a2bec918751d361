package dpserver_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// TestHealthSyncBoundToOwner: a token for a Dataplane's name moves its
// health only when it matches the stored Dataplane: the owner role's
// RoleId, the proxy type, the computed SPIFFE ID of an operator-applied
// one; and not once its tokens are revoked. Otherwise a role holding a
// token for a victim's name could mark the victim's endpoints not ready.
func TestHealthSyncBoundToOwner(t *testing.T) {
	ctx := context.Background()
	const webID = "spiffe://default.mesh.local/workload/web"
	owner := &resource.Owner{RoleARN: "arn:aws:iam::111122223333:role/web", RoleID: "AROAWEB", SPIFFEID: webID, ProxyType: resource.ProxyTypeDataplane}
	for _, tc := range []struct {
		name   string
		owner  *resource.Owner
		claims token.DataplaneClaims
		revoke bool
		status int
		reason string
	}{
		{"owner's token", owner, token.DataplaneClaims{SPIFFEID: webID, RoleID: "AROAWEB"}, false, 200, ""},
		{"another role's token", owner, token.DataplaneClaims{SPIFFEID: webID, RoleID: "AROAREDIS"}, false, 403, "dataplane_owner_mismatch"},
		{"a token without a role", owner, token.DataplaneClaims{SPIFFEID: webID}, false, 403, "dataplane_owner_mismatch"},
		{"an ingress token", owner, token.DataplaneClaims{SPIFFEID: webID, RoleID: "AROAWEB", ProxyType: resource.ProxyTypeIngress}, false, 403, "proxy_type_mismatch"},
		{"owner's token for an identity the Dataplane no longer has", owner, token.DataplaneClaims{SPIFFEID: "spiffe://default.mesh.local/team/old/web", RoleID: "AROAWEB"}, false, 401, "dataplane_token_stale"},
		{"revoked token", owner, token.DataplaneClaims{SPIFFEID: webID, RoleID: "AROAWEB"}, true, 401, "dataplane_token_revoked"},
		{"operator-applied, matching identity", nil, token.DataplaneClaims{SPIFFEID: webID}, false, 200, ""},
		{"operator-applied, another identity", nil, token.DataplaneClaims{SPIFFEID: "spiffe://default.mesh.local/workload/redis"}, false, 403, "spiffe_id_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false, false)
			dp := &resource.Dataplane{
				Meta: resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: "web-1"}, Owner: tc.owner,
				Networking: resource.Networking{Address: "10.0.1.23", Inbound: []resource.Inbound{{Port: 15000, ServicePort: 8080,
					Tags: map[string]string{resource.TagService: "web"}}}},
			}
			spec, err := resource.Marshal(dp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.UpsertRecord(ctx, e.store, store.Record{Key: store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"}, Spec: spec}); err != nil {
				t.Fatal(err)
			}
			c := tc.claims
			c.Mesh, c.Name = "default", "web-1"
			raw, _, err := e.tokens.IssueDataplaneToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if tc.revoke {
				if _, err := e.tokens.RevokeDataplane(ctx, "default", "web-1"); err != nil {
					t.Fatal(err)
				}
			}
			status, body := e.post(t, "/v1/health-sync", raw, dpapi.HealthSyncRequest{Ready: false})
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, body, tc.status)
			}
			want := resource.StateNotReady
			if tc.status != 200 {
				var p struct {
					Reason string `json:"reason"`
				}
				if err := json.Unmarshal(body, &p); err != nil || p.Reason != tc.reason {
					t.Fatalf("reason %q (%v), want %s: %s", p.Reason, err, tc.reason, body)
				}
				want = ""
			}
			if got := e.dataplane(t).Networking.Inbound[0].State; got != want {
				t.Fatalf("stored state %q, want %q", got, want)
			}
		})
	}
}

// TestHealthSyncAfterRevocation: a token issued after the revocation
// works again (the agent logs in again on 401).
func TestHealthSyncAfterRevocation(t *testing.T) {
	e := newEnv(t, false, false)
	if status, body := e.post(t, "/bootstrap", "", dpapi.BootstrapRequest{DataplaneResource: dpYAML}); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	ctx := context.Background()
	if _, err := e.tokens.RevokeDataplane(ctx, "default", "web-1"); err != nil {
		t.Fatal(err)
	}
	later, err := token.New(token.Config{Store: e.store, Now: func() time.Time { return time.Now().Add(2 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := later.IssueDataplaneToken(ctx, token.DataplaneClaims{Mesh: "default", Name: "web-1", SPIFFEID: "spiffe://default.mesh.local/workload/web"})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := e.post(t, "/v1/health-sync", raw, dpapi.HealthSyncRequest{Ready: true}); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
}
