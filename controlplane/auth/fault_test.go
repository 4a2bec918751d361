package auth_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
)

// TestDependencyFaults: STS, IAM or ECS down or throttled is a 503 with a
// reason, the refused attempt does not burn the token, and the same login
// works once the service recovers; transient throttling is absorbed by
// bounded retries.
func TestDependencyFaults(t *testing.T) {
	tests := []struct {
		name     string
		ecs      bool
		injector func(e *env) *awsfault.Injector
		f        awsfault.Fault
		reason   string
	}{
		{"STS throttled", false, func(e *env) *awsfault.Injector { return e.cloud.STS.Faults() }, awsfault.Fault{Kind: awsfault.Throttle}, auth.ReasonSTSUnavailable},
		{"STS 5xx", false, func(e *env) *awsfault.Injector { return e.cloud.STS.Faults() }, awsfault.Fault{Kind: awsfault.ServerError, Status: 503, Code: "ServiceUnavailable"}, auth.ReasonSTSUnavailable},
		{"IAM throttled", false, func(e *env) *awsfault.Injector { return e.cloud.IAM.Faults() }, awsfault.Fault{Kind: awsfault.Throttle}, auth.ReasonIAMUnavailable},
		{"IAM 5xx", false, func(e *env) *awsfault.Injector { return e.cloud.IAM.Faults() }, awsfault.Fault{Kind: awsfault.ServerError}, auth.ReasonIAMUnavailable},
		{"ECS throttled", true, func(e *env) *awsfault.Injector { return e.cloud.ECS.Faults() }, awsfault.Fault{Kind: awsfault.Throttle}, auth.ReasonECSUnavailable},
		{"ECS 5xx", true, func(e *env) *awsfault.Injector { return e.cloud.ECS.Faults() }, awsfault.Fault{Kind: awsfault.ServerError}, auth.ReasonECSUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name+" persistently", func(t *testing.T) {
			e := newEnv(t)
			e.cfg.VerifyECSTask = tt.ecs
			e.rebuild()
			inj := tt.injector(e)
			inj.Inject(tt.f)
			tok := e.sdkToken(e.cred)
			_, err := e.login(tok)
			wantProblem(t, err, 503, tt.reason)
			if hits := inj.Hits(); hits != 3 {
				t.Fatalf("%d attempts, want 3 (bounded retries)", hits)
			}
			if n := e.stored()[auth.KindLoginSignature]; n != 0 {
				t.Fatalf("a refused login left %d signature records", n)
			}
			inj.Clear()
			if _, err := e.login(tok); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
		t.Run(tt.name+" briefly", func(t *testing.T) {
			e := newEnv(t)
			e.cfg.VerifyECSTask = tt.ecs
			e.rebuild()
			f := tt.f
			f.Times = 2
			tt.injector(e).Inject(f)
			if _, err := e.login(e.sdkToken(e.cred)); err != nil {
				t.Fatalf("two faults then success: %v", err)
			}
		})
	}
}

func TestIAMUnreachable(t *testing.T) {
	e := newEnv(t)
	down := awsiam.NewFromConfig(aws.Config{Region: region, Credentials: e.cred}, func(o *awsiam.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
	e.cfg.IAM = auth.IAMClient{Client: down}
	e.rebuild()
	tok := e.sdkToken(e.cred)
	_, err := e.login(tok)
	wantProblem(t, err, 503, auth.ReasonIAMUnavailable)
	e.cfg.IAM = e.iamCl
	e.rebuild()
	if _, err := e.login(tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestSTSUnreachable(t *testing.T) {
	e := newEnv(t)
	tok := e.sdkToken(e.cred)
	e.srv.Close()
	_, err := e.v.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: "web-1", LoginToken: tok}, nil)
	wantProblem(t, err, 503, auth.ReasonSTSUnavailable)
}
