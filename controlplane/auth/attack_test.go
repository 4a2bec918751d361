package auth_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecs"
)

const stsXML = `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::111122223333:assumed-role/web/s</Arn><UserId>AROAAAAAAAAAAAAA:s</UserId><Account>111122223333</Account></GetCallerIdentityResult>`

// TestAttacks: every row is a forged or unauthorized login; each must be
// refused with its reason code and leave no signature, dataplane or token
// key record behind.
func TestAttacks(t *testing.T) {
	policy := func(e *env, w resource.AWSWorkload) {
		e.put(&resource.OnboardingPolicy{Meta: resource.Meta{Type: resource.KindOnboardingPolicy, Mesh: "default", Name: "p"},
			Spec: resource.OnboardingPolicySpec{Allow: []resource.OnboardingRule{{Workloads: []resource.WorkloadMatch{{AWS: w}}, OnboardTo: []resource.OnboardTarget{{}}}}}})
	}
	withTags := func(tags map[string]string) func(*env) {
		return func(e *env) {
			if err := e.cloud.IAM.SetTags(acct, "web", tags); err != nil {
				t.Fatal(err)
			}
		}
	}
	tagsWithout := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range defaultTags {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	tagsWith := func(k, v string) map[string]string {
		m := tagsWithout(k)
		m[k] = v
		return m
	}
	verifyECS := func(e *env) { e.cfg.VerifyECSTask = true; e.rebuild() }
	stsFault := func(f awsfault.Fault) func(*env) { return func(e *env) { e.cloud.STS.Faults().Inject(f) } }
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	tests := []struct {
		name   string
		setup  func(e *env)
		token  func(e *env) string
		req    func(r *auth.LoginRequest)
		status int
		reason string
	}{
		// 1. size and decoding.
		{name: "token over 16 KiB", token: func(e *env) string { return strings.Repeat("A", auth.MaxLoginTokenSize+4) }, status: 401, reason: auth.ReasonTokenTooLarge},
		{name: "invalid base64", token: func(e *env) string { return "!!not base64!!" }, status: 401, reason: auth.ReasonTokenMalformed},
		{name: "invalid JSON", token: func(e *env) string { return b64(`{"iam_http_request_method":"POST",`) }, status: 401, reason: auth.ReasonTokenMalformed},
		{name: "unknown JSON field", token: func(e *env) string {
			return b64(`{"iam_http_request_method":"POST","iam_request_url":"","iam_request_headers":"","iam_request_body":"","x":1}`)
		}, status: 401, reason: auth.ReasonTokenMalformed},
		{name: "duplicate JSON key", token: func(e *env) string {
			return b64(`{"iam_http_request_method":"POST","iam_http_request_method":"GET","iam_request_url":"","iam_request_headers":"","iam_request_body":""}`)
		}, status: 401, reason: auth.ReasonTokenMalformed},
		{name: "Host header in token", token: func(e *env) string {
			return rawToken(t, e.token(signed{}), func(h map[string][]string) { h["Host"] = []string{"evil.example"} })
		}, status: 401, reason: auth.ReasonTokenMalformed},
		// 2. method, scheme, path, query.
		{name: "GET method", token: func(e *env) string { return e.token(signed{method: http.MethodGet}) }, status: 401, reason: auth.ReasonBadMethod},
		{name: "http scheme", token: func(e *env) string { return e.token(signed{url: "http://sts.us-east-1.amazonaws.com/"}) }, status: 401, reason: auth.ReasonBadScheme},
		{name: "query string on the URL", token: func(e *env) string {
			return e.token(signed{url: e.srv.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"})
		}, status: 401, reason: auth.ReasonHasQuery},
		{name: "path other than /", token: func(e *env) string { return e.token(signed{url: e.srv.URL + "/x"}) }, status: 401, reason: auth.ReasonBadPath},
		// 3. host and region.
		{name: "host sts.us-east-1.attacker.amazonaws.com", token: func(e *env) string {
			return e.token(signed{url: "https://sts.us-east-1.attacker.amazonaws.com/"})
		}, status: 401, reason: auth.ReasonBadHost},
		{name: "host sts.amazonaws.com.evil.com", token: func(e *env) string { return e.token(signed{url: "https://sts.amazonaws.com.evil.com/"}) }, status: 401, reason: auth.ReasonBadHost},
		{name: "host 169.254.169.254", token: func(e *env) string { return e.token(signed{url: "https://169.254.169.254/"}) }, status: 401, reason: auth.ReasonBadHost},
		{name: "host of another region", token: func(e *env) string { return e.token(signed{url: "https://sts.eu-west-1.amazonaws.com/"}) }, status: 401, reason: auth.ReasonBadHost},
		{name: "malformed signing region", token: func(e *env) string {
			return e.token(signed{url: "https://sts.us-east-1.amazonaws.com/", region: "us-east-1.evil.com"})
		}, status: 401, reason: auth.ReasonBadRegion},
		{name: "two Authorization headers", token: func(e *env) string {
			return e.token(signed{post: func(h http.Header) { h.Add("Authorization", h.Get("Authorization")) }})
		}, status: 401, reason: auth.ReasonBadAuthorization},
		// 4. body.
		{name: "body with an extra parameter", token: func(e *env) string { return e.token(signed{body: goodBody + "&RoleName=admin"}) }, status: 401, reason: auth.ReasonBadBody},
		{name: "Action=GetRole", token: func(e *env) string { return e.token(signed{body: "Action=GetRole&Version=2011-06-15"}) }, status: 401, reason: auth.ReasonBadBody},
		{name: "duplicate Action", token: func(e *env) string {
			return e.token(signed{body: "Action=GetCallerIdentity&Action=GetCallerIdentity&Version=2011-06-15"})
		}, status: 401, reason: auth.ReasonBadBody},
		// 5. headers.
		{name: "extra X-Amz-Foo header", token: func(e *env) string {
			return e.token(signed{pre: func(h http.Header) { h.Set("X-Amz-Foo", "bar") }})
		}, status: 401, reason: auth.ReasonBadHeader},
		// 6. server ID.
		{name: "server-ID header missing", token: func(e *env) string {
			return e.token(signed{pre: func(h http.Header) { h.Del(auth.ServerIDHeader) }})
		}, status: 401, reason: auth.ReasonServerIDMissing},
		{name: "server-ID header wrong", token: func(e *env) string {
			return e.token(signed{pre: func(h http.Header) { h.Set(auth.ServerIDHeader, "other-cp") }})
		}, status: 401, reason: auth.ReasonServerIDMismatch},
		{name: "server-ID header present but not signed", token: func(e *env) string {
			return e.token(signed{pre: func(h http.Header) { h.Del(auth.ServerIDHeader) }, post: func(h http.Header) { h.Set(auth.ServerIDHeader, serverID) }})
		}, status: 401, reason: auth.ReasonServerIDNotSigned},
		// 7. freshness and replay.
		{name: "stale X-Amz-Date", token: func(e *env) string { return e.token(signed{at: time.Now().Add(-20 * time.Minute)}) }, status: 401, reason: auth.ReasonExpired},
		{name: "X-Amz-Date in the future", token: func(e *env) string { return e.token(signed{at: time.Now().Add(20 * time.Minute)}) }, status: 401, reason: auth.ReasonExpired},
		{name: "replay of a used token", token: func(e *env) string {
			tok := e.sdkToken(e.cred)
			if _, err := e.login(tok); err != nil {
				t.Fatalf("first login: %v", err)
			}
			return tok
		}, status: 401, reason: auth.ReasonReplayed},
		{name: "replay with an unsigned header changed", token: func(e *env) string {
			tok := e.token(signed{})
			if _, err := e.login(tok); err != nil {
				t.Fatalf("first login: %v", err)
			}
			return retoken(t, tok, func(h http.Header) { h.Set("User-Agent", "other") })
		}, status: 401, reason: auth.ReasonReplayed},
		// 8. STS.
		{name: "signature STS rejects", token: func(e *env) string {
			c := e.cred.AWS()
			c.SecretAccessKey = "wrong"
			return e.token(signed{cred: c})
		}, status: 401, reason: auth.ReasonSTSRejected},
		{name: "STS returns non-XML", setup: stsFault(awsfault.Fault{Kind: awsfault.Body, ContentType: "text/plain", Body: "hello"}), status: 401, reason: auth.ReasonSTSBadResponse},
		{name: "STS returns XML labelled JSON", setup: stsFault(awsfault.Fault{Kind: awsfault.Body, ContentType: "application/json", Body: stsXML + `</GetCallerIdentityResponse>`}), status: 401, reason: auth.ReasonSTSBadResponse},
		{name: "STS returns an XML error", setup: stsFault(awsfault.Fault{Kind: awsfault.Error, Status: 403, Code: "InvalidClientTokenId", Message: "secret detail"}), status: 401, reason: auth.ReasonSTSRejected},
		{name: "STS returns two results", setup: stsFault(awsfault.Fault{Kind: awsfault.Body, ContentType: "text/xml", Body: strings.Replace(stsXML, "<GetCallerIdentityResult>", "<GetCallerIdentityResult><Arn>x</Arn><UserId>y</UserId><Account>z</Account></GetCallerIdentityResult><GetCallerIdentityResult>", 1) + `</GetCallerIdentityResponse>`}), status: 401, reason: auth.ReasonSTSBadResponse},
		{name: "STS returns trailing data", setup: stsFault(awsfault.Fault{Kind: awsfault.Body, ContentType: "text/xml", Body: stsXML + `</GetCallerIdentityResponse><x/>`}), status: 401, reason: auth.ReasonSTSBadResponse},
		{name: "STS returns a redirect", setup: stsFault(awsfault.Fault{Kind: awsfault.Redirect, Location: "http://127.0.0.1:1/"}), status: 401, reason: auth.ReasonSTSBadResponse},
		{name: "STS stalls 5 s past the timeout", setup: func(e *env) {
			e.cfg.STSTimeout = 50 * time.Millisecond
			e.rebuild()
			e.cloud.STS.Faults().Inject(awsfault.Fault{Kind: awsfault.Stall, Delay: 5 * time.Second})
		}, status: 503, reason: auth.ReasonSTSUnavailable},
		// 9. assumed role.
		{name: "iam:user ARN instead of an assumed role", token: func(e *env) string {
			return e.token(signed{cred: e.cloud.STS.IssueUser(acct, "alice").AWS()})
		}, status: 401, reason: auth.ReasonNotAssumedRole},
		// 10. account.
		{name: "account not allowed", token: func(e *env) string {
			e.cloud.IAM.PutRole("444455556666", "web", defaultTags)
			c, err := e.cloud.STS.AssumeRole("444455556666", "web", session, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return e.token(signed{cred: c.AWS()})
		}, status: 403, reason: auth.ReasonAccountNotAllowed},
		// 11. GetRole.
		{name: "RoleId mismatch (role re-created)", setup: func(e *env) { e.cloud.IAM.PutRole(acct, "web", defaultTags) }, status: 403, reason: auth.ReasonRoleIDMismatch},
		{name: "role deleted", setup: func(e *env) { e.cloud.IAM.DeleteRole(acct, "web") }, status: 403, reason: auth.ReasonRoleNotFound},
		// 12. tags.
		{name: "missing kuma.io/type", setup: withTags(tagsWithout("kuma.io/type")), status: 403, reason: auth.ReasonRoleTypeInvalid},
		{name: "kuma.io/type of another proxy type", setup: withTags(tagsWith("kuma.io/type", "ingress")), status: 403, reason: auth.ReasonZoneIngress},
		{name: "missing kuma.io/mesh", setup: withTags(tagsWithout("kuma.io/mesh")), status: 403, reason: auth.ReasonRoleMeshMismatch},
		{name: "kuma.io/mesh for another mesh", setup: withTags(tagsWith("kuma.io/mesh", "payments")), status: 403, reason: auth.ReasonRoleMeshMismatch},
		{name: "kuma.io/service not covering an inbound", setup: withTags(tagsWith("kuma.io/service", "api")), status: 403, reason: auth.ReasonRoleService},
		{name: "workload tag mismatch under a workload-based MeshIdentity", setup: func(e *env) {
			e.put(&resource.MeshIdentity{Meta: resource.Meta{Type: resource.KindMeshIdentity, Mesh: "default", Name: "wl"},
				Spec: resource.MeshIdentitySpec{SpiffeID: resource.SpiffeIDTemplate{Path: "/ns/prod/{{ .Workload }}"}}})
			withTags(tagsWith("kuma.io/workload", "admin"))(e)
		}, status: 403, reason: auth.ReasonRoleWorkload},
		{name: "workload label without a workload tag", setup: withTags(tagsWithout("kuma.io/workload")), status: 403, reason: auth.ReasonRoleWorkload},
		// 13. ECS task.
		{name: "ECS task STOPPED", setup: func(e *env) {
			verifyECS(e)
			e.cloud.ECS.SetStatus(fakeecs.Task{Account: acct, Region: region, Cluster: "prod", TaskID: session}.ARN(), "STOPPED")
		}, status: 403, reason: auth.ReasonECSTaskNotRunning},
		{name: "ECS task in a foreign cluster", setup: func(e *env) {
			verifyECS(e)
			e.cloud.ECS.SetStatus(fakeecs.Task{Account: acct, Region: region, Cluster: "prod", TaskID: session}.ARN(), "STOPPED")
			e.cloud.ECS.AddTask(fakeecs.Task{Account: acct, Region: region, Cluster: "prod", TaskID: "other", TaskRoleARN: e.role.ARN})
			e.cloud.ECS.AddTask(fakeecs.Task{Account: acct, Region: region, Cluster: "evil", TaskID: session, TaskRoleARN: e.role.ARN})
			e.cloud.ECS.SetStatus(fakeecs.Task{Account: acct, Region: region, Cluster: "prod", TaskID: session}.ARN(), "RUNNING")
			e.cloud.IAM.PutRole(acct, "unused", nil)
		}, token: func(e *env) string {
			// A session whose task runs only in another cluster.
			e.cloud.ECS.AddTask(fakeecs.Task{Account: acct, Region: region, Cluster: "evil", TaskID: "abc123", TaskRoleARN: e.role.ARN})
			c, err := e.cloud.STS.AssumeRole(acct, "web", "abc123", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return e.token(signed{cred: c.AWS()})
		}, status: 403, reason: auth.ReasonECSTaskNotFound},
		{name: "ECS task runs with another role", setup: func(e *env) {
			verifyECS(e)
			e.cloud.ECS.AddTask(fakeecs.Task{Account: acct, Region: region, Cluster: "prod", TaskID: session, TaskRoleARN: "arn:aws:iam::111122223333:role/other"})
		}, status: 403, reason: auth.ReasonECSTaskRole},
		// 14. onboarding policies.
		{name: "onboarding policy denying the region", setup: func(e *env) {
			verifyECS(e)
			policy(e, resource.AWSWorkload{Regions: []string{"eu-west-1"}})
		}, status: 403, reason: auth.ReasonOnboardingDenied},
		{name: "onboarding policy denying the account", setup: func(e *env) { policy(e, resource.AWSWorkload{Accounts: []string{"999999999999"}}) }, status: 403, reason: auth.ReasonOnboardingDenied},
		{name: "onboarding policy restricting clusters without ECS verification", setup: func(e *env) {
			policy(e, resource.AWSWorkload{ECS: &resource.ECSWorkload{Clusters: []string{"prod"}}})
		}, status: 403, reason: auth.ReasonOnboardingNeedsECSCheck},
		{name: "onboarding policy denying the zone", setup: func(e *env) {
			verifyECS(e)
			policy(e, resource.AWSWorkload{Zones: []string{"us-east-1b"}})
		}, status: 403, reason: auth.ReasonOnboardingDenied},
		// Lookups after authentication.
		{name: "Dataplane that does not exist", req: func(r *auth.LoginRequest) { r.Name = "ghost" }, status: 409, reason: auth.ReasonDataplaneOwned},
		{name: "mesh that does not exist", req: func(r *auth.LoginRequest) { r.Mesh = "ghost" }, status: 404, reason: auth.ReasonMeshNotFound},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d attack rows", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			tok := ""
			if tt.token != nil {
				tok = tt.token(e)
			} else {
				tok = e.sdkToken(e.cred)
			}
			before := e.stored()
			req := auth.LoginRequest{Mesh: "default", Name: "web-1", ProxyType: "dataplane", LoginToken: tok}
			if tt.req != nil {
				tt.req(&req)
			}
			res, err := e.v.Authenticate(context.Background(), req, nil)
			if res != nil {
				t.Fatalf("attack logged in: %+v", res.Identity)
			}
			wantProblem(t, err, tt.status, tt.reason)
			if p := err.Error(); strings.Contains(p, "secret detail") || strings.Contains(p, "<") {
				t.Fatalf("the refusal echoes STS: %s", p)
			}
			after := e.stored()
			for k, n := range after {
				if n != before[k] {
					t.Fatalf("%s records: %d before, %d after", k, before[k], n)
				}
			}
		})
	}
}
