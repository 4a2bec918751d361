package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// A second role in the same account, allowed to serve redis only.
func (e *env) redisRole() (roleARN, roleID string) {
	e.t.Helper()
	r := e.cloud.IAM.PutRole(acct, "redis", map[string]string{
		"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": "redis", "kuma.io/workload": "redis",
	})
	return r.ARN, r.RoleID
}

// redisDP is redis-1 as the redis role's bootstrap stored it.
func (e *env) redisDP() *resource.Dataplane {
	arn, id := e.redisRole()
	dp := &resource.Dataplane{
		Meta: resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: "redis-1",
			Labels: map[string]string{"kuma.io/workload": "redis", "ecsmesh.io/origin": "bootstrap"}},
		Networking: resource.Networking{Address: "10.0.2.7", Inbound: []resource.Inbound{
			{Port: 15000, ServicePort: 6379, Tags: map[string]string{"kuma.io/service": "redis", "kuma.io/protocol": "tcp"}},
		}},
		Owner: &resource.Owner{RoleARN: arn, RoleID: id, SPIFFEID: "spiffe://default.mesh.local/workload/redis", ProxyType: "dataplane"},
	}
	e.put(dp)
	return dp
}

// webAs is web's Dataplane under another name.
func (e *env) webAs(name string) *resource.Dataplane {
	dp := *e.dp
	dp.Name = name
	return &dp
}

func (e *env) putIdentity(name string, sel map[string]string, path string) {
	e.put(&resource.MeshIdentity{Meta: resource.Meta{Type: resource.KindMeshIdentity, Mesh: "default", Name: name},
		Spec: resource.MeshIdentitySpec{Selector: resource.MeshIdentitySelector{Dataplane: &resource.LabelSelector{MatchLabels: sel}},
			SpiffeID: resource.SpiffeIDTemplate{Path: path}}})
}

// TestIdentityAttacks: a member of the mesh with one valid task role
// (web) tries to take another service's identity. Every row must be
// refused with its reason code and change nothing in the store.
func TestIdentityAttacks(t *testing.T) {
	setTags := func(e *env, tags map[string]string) {
		if err := e.cloud.IAM.SetTags(acct, "web", tags); err != nil {
			t.Fatal(err)
		}
	}
	tags := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range defaultTags {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name   string
		setup  func(e *env)
		req    func(r *auth.LoginRequest)
		dp     func(e *env) *resource.Dataplane // nil: login for a stored Dataplane
		status int
		reason string
	}{
		// 1. Name takeover.
		{name: "bootstrap over another role's Dataplane", dp: func(e *env) *resource.Dataplane { e.redisDP(); return e.webAs("redis-1") },
			req: func(r *auth.LoginRequest) { r.Name = "redis-1" }, status: 409, reason: auth.ReasonDataplaneOwned},
		{name: "login for another role's Dataplane", setup: func(e *env) {
			e.redisDP()
			setTags(e, tags("kuma.io/service", "web,redis"))
		}, req: func(r *auth.LoginRequest) { r.Name = "redis-1" }, status: 409, reason: auth.ReasonDataplaneOwned},
		{name: "bootstrap over an operator's Dataplane", dp: func(e *env) *resource.Dataplane { return e.webAs("web-1") },
			status: 409, reason: auth.ReasonDataplaneOwned},
		{name: "login for a name that does not exist (no oracle)", req: func(r *auth.LoginRequest) { r.Name = "ghost" },
			status: 409, reason: auth.ReasonDataplaneOwned},
		// 2. Untagged service.
		{name: "role without kuma.io/service (default identity)", setup: func(e *env) { setTags(e, tags("kuma.io/service", "")) },
			status: 403, reason: auth.ReasonRoleServiceMissing},
		{name: "role without kuma.io/service (service identity)", setup: func(e *env) {
			e.putIdentity("by-service", nil, "/svc/{{ .Service }}")
			setTags(e, tags("kuma.io/service", "", "kuma.io/workload", ""))
			e.dp.Labels = map[string]string{resource.LabelECSCluster: "prod"}
			e.put(e.dp)
		}, status: 403, reason: auth.ReasonRoleServiceMissing},
		{name: "kuma.io/service * without the opt-in", setup: func(e *env) { setTags(e, tags("kuma.io/service", "*")) },
			status: 403, reason: auth.ReasonRoleService},
		// 3. Labels choose the identity.
		{name: "label selects another MeshIdentity", setup: func(e *env) {
			e.putIdentity("payments", map[string]string{"team": "payments"}, "/team/payments/{{ .Service }}")
			e.dp.Labels["team"] = "payments"
			e.put(e.dp)
		}, status: 403, reason: auth.ReasonRoleLabel},
		{name: "label feeds the identity template", setup: func(e *env) {
			e.putIdentity("by-team", nil, `/team/{{ label "team" }}/{{ .Service }}`)
			e.dp.Labels["team"] = "payments"
			e.put(e.dp)
		}, status: 403, reason: auth.ReasonRoleLabel},
		{name: "label tag differs from the label", setup: func(e *env) {
			e.putIdentity("by-team", nil, `/team/{{ label "team" }}/{{ .Service }}`)
			e.dp.Labels["team"] = "payments"
			e.put(e.dp)
			setTags(e, tags("team", "web"))
		}, status: 403, reason: auth.ReasonRoleLabel},
		{name: "label dropped to escape a selector its role asserts", setup: func(e *env) {
			e.putIdentity("untrusted", map[string]string{"tier": "untrusted"}, "/untrusted/{{ .Service }}")
			setTags(e, tags("tier", "untrusted"))
		}, status: 403, reason: auth.ReasonRoleLabel},
		{name: "label satisfies an onboarding workloadSelector", setup: func(e *env) {
			e.put(&resource.OnboardingPolicy{Meta: resource.Meta{Type: resource.KindOnboardingPolicy, Mesh: "default", Name: "p"},
				Spec: resource.OnboardingPolicySpec{Allow: []resource.OnboardingRule{{
					Workloads: []resource.WorkloadMatch{{}},
					OnboardTo: []resource.OnboardTarget{{WorkloadSelector: &resource.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}}}}}})
			e.dp.Labels["team"] = "payments"
			e.put(e.dp)
		}, status: 403, reason: auth.ReasonRoleLabel},
		{name: "workload label without the tag under a service identity", setup: func(e *env) {
			e.putIdentity("by-service", nil, "/svc/{{ .Service }}")
			setTags(e, tags("kuma.io/workload", "payments"))
		}, status: 403, reason: auth.ReasonRoleWorkload},
		// 8. Regions are the caller's choice without ECS verification.
		{name: "region policy without ECS task verification", setup: func(e *env) {
			e.put(&resource.OnboardingPolicy{Meta: resource.Meta{Type: resource.KindOnboardingPolicy, Mesh: "default", Name: "p"},
				Spec: resource.OnboardingPolicySpec{Allow: []resource.OnboardingRule{{
					Workloads: []resource.WorkloadMatch{{AWS: resource.AWSWorkload{Regions: []string{region}}}}, OnboardTo: []resource.OnboardTarget{{}}}}}})
		}, status: 403, reason: auth.ReasonOnboardingNeedsECSCheck},
		// 14. Proxy type confusion.
		{name: "ingress role acting as a dataplane", setup: func(e *env) { setTags(e, tags("kuma.io/type", "ingress")) },
			req: func(r *auth.LoginRequest) { r.ProxyType = "ingress" }, status: 403, reason: auth.ReasonZoneIngress},
		{name: "egress role bootstrapping a Dataplane", setup: func(e *env) { setTags(e, tags("kuma.io/type", "egress")) },
			dp:  func(e *env) *resource.Dataplane { return e.webAs("web-2") },
			req: func(r *auth.LoginRequest) { r.ProxyType = "egress"; r.Name = "web-2" }, status: 403, reason: auth.ReasonProxyType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			req := auth.LoginRequest{Mesh: "default", Name: "web-1", ProxyType: "dataplane", LoginToken: e.sdkToken(e.cred)}
			if tt.req != nil {
				tt.req(&req)
			}
			var dp *resource.Dataplane
			if tt.dp != nil {
				dp = tt.dp(e)
			}
			before := e.stored()
			res, err := e.v.Authenticate(context.Background(), req, dp)
			if res != nil {
				t.Fatalf("attack logged in as %s", res.Identity.SPIFFEID)
			}
			wantProblem(t, err, tt.status, tt.reason)
			if after := e.stored(); !equalCounts(before, after) {
				t.Fatalf("records changed: %v → %v", before, after)
			}
		})
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, n := range a {
		if b[k] != n {
			return false
		}
	}
	return len(a) == len(b)
}

// The refusal for a name owned by another role and for a name that does
// not exist read the same: a member learns nothing about other names.
func TestOwnedAndUnknownNamesAnswerAlike(t *testing.T) {
	e := newEnv(t)
	e.redisDP()
	if err := e.cloud.IAM.SetTags(acct, "web", map[string]string{
		"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": "web,redis", "kuma.io/workload": "web"}); err != nil {
		t.Fatal(err)
	}
	answer := func(name string) *problem.Problem {
		_, err := e.v.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: name, ProxyType: "dataplane", LoginToken: e.sdkToken(e.cred)}, nil)
		p, ok := err.(*problem.Problem)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		return p
	}
	owned, unknown := answer("redis-1"), answer("ghost-1")
	owned.Details = strings.ReplaceAll(owned.Details, "redis-1", "NAME")
	unknown.Details = strings.ReplaceAll(unknown.Details, "ghost-1", "NAME")
	if owned.Status != unknown.Status || owned.Reason != unknown.Reason || owned.Title != unknown.Title || owned.Details != unknown.Details {
		t.Fatalf("answers differ:\n owned   %+v\n unknown %+v", owned, unknown)
	}
}

// The owner may log in again (token refresh) and bootstrap again (a
// restarted task of the same role re-registering its name).
func TestOwnerLogsInAgain(t *testing.T) {
	e := newEnv(t)
	dp := e.webAs("web-7")
	dp.Owner = &resource.Owner{RoleARN: e.role.ARN, RoleID: e.role.RoleID, SPIFFEID: "spiffe://default.mesh.local/workload/web", ProxyType: "dataplane"}
	e.put(dp)
	res, err := e.v.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: "web-7", ProxyType: "dataplane", LoginToken: e.sdkToken(e.cred)}, nil)
	if err != nil {
		t.Fatalf("owner's login refused: %v", err)
	}
	if res.Identity.RoleID != e.role.RoleID || res.Identity.ProxyType != "dataplane" {
		t.Fatalf("identity %+v", res.Identity)
	}
	if _, err := e.v.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: "web-7", ProxyType: "dataplane", LoginToken: e.sdkToken(e.cred)}, e.webAs("web-7")); err != nil {
		t.Fatalf("owner's bootstrap refused: %v", err)
	}
}

// With the opt-in, kuma.io/service "*" serves any service.
func TestAnyServiceOptIn(t *testing.T) {
	e := newEnv(t)
	e.cfg.AllowAnyServiceTag = true
	e.rebuild()
	if err := e.cloud.IAM.SetTags(acct, "web", map[string]string{"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": "*", "kuma.io/workload": "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.login(e.sdkToken(e.cred)); err != nil {
		t.Fatalf("refused with the opt-in: %v", err)
	}
}

// A label the role asserts with a tag of the same key may select an
// identity.
func TestAssertedLabelSelectsIdentity(t *testing.T) {
	e := newEnv(t)
	e.putIdentity("payments", map[string]string{"team": "payments"}, "/team/payments/{{ .Service }}")
	e.dp.Labels["team"] = "payments"
	e.put(e.dp)
	if err := e.cloud.IAM.SetTags(acct, "web", map[string]string{"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": "web", "kuma.io/workload": "web", "team": "payments"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.login(e.sdkToken(e.cred))
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.SPIFFEID != "spiffe://default.mesh.local/team/payments/web" {
		t.Fatalf("SPIFFE ID %s", res.Identity.SPIFFEID)
	}
}

// With ECS task verification on, a region restriction is honoured (the
// task's region is proven by its ARN).
func TestRegionPolicyWithECSVerification(t *testing.T) {
	e := newEnv(t)
	e.cfg.VerifyECSTask = true
	e.rebuild()
	e.put(&resource.OnboardingPolicy{Meta: resource.Meta{Type: resource.KindOnboardingPolicy, Mesh: "default", Name: "p"},
		Spec: resource.OnboardingPolicySpec{Allow: []resource.OnboardingRule{{
			Workloads: []resource.WorkloadMatch{{AWS: resource.AWSWorkload{Regions: []string{region}}}}, OnboardTo: []resource.OnboardTarget{{}}}}}})
	if _, err := e.login(e.sdkToken(e.cred)); err != nil {
		t.Fatalf("refused: %v", err)
	}
}

// 13. Keys that differ only in case: the JSON decoder would match NAME to
// name and authenticate web-1 while a check read api-1.
func TestLoginBodyCaseVariantKeys(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.v.LoginHandler())
	t.Cleanup(srv.Close)
	for _, body := range []string{
		`{"mesh":"default","name":"api-1","NAME":"web-1","proxyType":"dataplane","loginToken":"` + e.sdkToken(e.cred) + `"}`,
		`{"mesh":"default","Name":"web-1","proxyType":"dataplane","loginToken":"` + e.sdkToken(e.cred) + `"}`,
		`{"mesh":"default","name":"web-1","name":"web-1","proxyType":"dataplane","loginToken":"` + e.sdkToken(e.cred) + `"}`,
	} {
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		var p problem.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 400 || p.Reason != auth.ReasonInvalidRequest {
			t.Fatalf("%s: HTTP %d %s", body[:60], resp.StatusCode, p.Reason)
		}
	}
}

// 11. Forged-but-well-formed logins from one source are rate limited
// before the CP calls STS.
func TestLoginRateLimitPerSource(t *testing.T) {
	e := newEnv(t)
	e.cfg.LoginRate = auth.RateLimit{PerSecond: 0.001, Burst: 3}
	e.rebuild()
	ctx := auth.WithSourceIP(context.Background(), "192.0.2.7")
	limited := 0
	for i := 0; i < 6; i++ {
		_, err := e.v.Authenticate(ctx, auth.LoginRequest{Mesh: "default", Name: "web-1", ProxyType: "dataplane", LoginToken: e.sdkToken(e.cred)}, nil)
		if p, ok := err.(*problem.Problem); ok && p.Reason == auth.ReasonRateLimited {
			if p.Status != http.StatusTooManyRequests {
				t.Fatalf("status %d", p.Status)
			}
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d of 6 logins limited, want 3 (burst 3)", limited)
	}
	// Another source is not affected.
	other := auth.WithSourceIP(context.Background(), "192.0.2.8")
	if _, err := e.v.Authenticate(other, auth.LoginRequest{Mesh: "default", Name: "web-1", ProxyType: "dataplane", LoginToken: e.sdkToken(e.cred)}, nil); err != nil {
		t.Fatalf("other source: %v", err)
	}
}
