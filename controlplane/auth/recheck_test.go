package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
)

// Recheck is what the xDS server asks periodically of every stream: a
// role that lost its tags or was re-created loses its Dataplane; an IAM
// outage is temporary (the stream stays).
func TestRecheck(t *testing.T) {
	temporary := func(err error) bool {
		var te interface{ Temporary() bool }
		return errors.As(err, &te) && te.Temporary()
	}
	tests := []struct {
		name   string
		change func(e *env)
		reason string // "" ok, "temporary" unknown
	}{
		{name: "unchanged"},
		{name: "service tag removed", change: func(e *env) {
			_ = e.cloud.IAM.SetTags(acct, "web", map[string]string{"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/workload": "web"})
		}, reason: auth.ReasonRoleServiceMissing},
		{name: "service tag narrowed", change: func(e *env) {
			_ = e.cloud.IAM.SetTags(acct, "web", map[string]string{"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": "api", "kuma.io/workload": "web"})
		}, reason: auth.ReasonRoleService},
		{name: "role re-created", change: func(e *env) { e.cloud.IAM.PutRole(acct, "web", defaultTags) }, reason: auth.ReasonRoleIDMismatch},
		{name: "role deleted", change: func(e *env) { e.cloud.IAM.DeleteRole(acct, "web") }, reason: auth.ReasonRoleNotFound},
		{name: "IAM down", change: func(e *env) {
			e.cloud.IAM.Faults().Inject(awsfault.Fault{Kind: awsfault.Error, Status: 503, Code: "ServiceUnavailable", Times: 100})
		}, reason: "temporary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			res, err := e.login(e.sdkToken(e.cred))
			if err != nil {
				t.Fatal(err)
			}
			claims := token.DataplaneClaims{Mesh: "default", Name: "web-1", SPIFFEID: res.Identity.SPIFFEID,
				RoleARN: res.Identity.RoleARN, RoleID: res.Identity.RoleID, ProxyType: res.Identity.ProxyType}
			if tt.change != nil {
				tt.change(e)
				e.rebuild() // a fresh role cache, as after its TTL
			}
			err = e.v.Recheck(context.Background(), claims, e.dp)
			switch tt.reason {
			case "":
				if err != nil {
					t.Fatalf("recheck refused: %v", err)
				}
			case "temporary":
				if !temporary(err) {
					t.Fatalf("err = %v, want a temporary error", err)
				}
			default:
				if temporary(err) {
					t.Fatalf("err = %v is temporary", err)
				}
				wantProblem(t, err, 403, tt.reason)
			}
		})
	}
}
