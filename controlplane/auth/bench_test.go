package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// BenchmarkLoginVerify measures one login as the CP sees it: decoding and
// checks, the STS round trip to the fake on loopback (whose own SigV4
// verification is included), GetRole (cached after the first), store
// writes and token signing.
func BenchmarkLoginVerify(b *testing.B) {
	e := newEnv(b)
	toks := make([]string, b.N)
	for i := range toks {
		id := fmt.Sprint(i)
		toks[i] = e.token(signed{pre: func(h http.Header) { h.Set("Amz-Sdk-Invocation-Id", id) }})
	}
	before := e.cloud.IAM.GetRoleCalls()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.login(toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(e.cloud.IAM.GetRoleCalls()-before), "GetRole-calls")
}

// BenchmarkLogin1000Concurrent100Roles runs 1,000 concurrent /bootstrap
// logins of 100 distinct roles (10 tasks each) against a cold GetRole
// cache per iteration, and reports logins/s and the GetRole calls per
// 1,000 logins (the cache must keep it at ≤ 100).
func BenchmarkLogin1000Concurrent100Roles(b *testing.B) {
	const roles, perRole = 100, 10
	e := newEnv(b)
	creds := make([]sigv4check.Credential, 0, roles*perRole)
	dps := make([]*resource.Dataplane, 0, roles*perRole)
	for r := 0; r < roles; r++ {
		svc := fmt.Sprintf("svc-%d", r)
		e.cloud.IAM.PutRole(acct, svc, map[string]string{"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": svc, "kuma.io/workload": svc})
		for k := 0; k < perRole; k++ {
			c, err := e.cloud.STS.AssumeRole(acct, svc, fmt.Sprintf("task-%d-%d", r, k), time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			creds = append(creds, c)
			dps = append(dps, &resource.Dataplane{
				Meta:       resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: fmt.Sprintf("%s-%d", svc, k), Labels: map[string]string{"kuma.io/workload": svc}},
				Networking: resource.Networking{Address: "10.0.0.1", Inbound: []resource.Inbound{{Port: 15000, Tags: map[string]string{"kuma.io/service": svc}}}},
			})
		}
	}
	var total time.Duration
	getRoles := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e.rebuild() // cold GetRole cache
		toks := make([]string, len(creds))
		for j, c := range creds {
			toks[j] = e.token(signed{cred: c.AWS(), pre: func(h http.Header) { h.Set("Amz-Sdk-Invocation-Id", fmt.Sprint(i)) }})
		}
		before := e.cloud.IAM.GetRoleCalls()
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(toks))
		for j := range toks {
			wg.Add(1)
			go func(j int) {
				defer wg.Done()
				_, err := e.v.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: dps[j].Name, LoginToken: toks[j]}, dps[j])
				if err != nil {
					errs <- err
				}
			}(j)
		}
		wg.Wait()
		total += time.Since(start)
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		getRoles += e.cloud.IAM.GetRoleCalls() - before
	}
	b.ReportMetric(float64(len(creds)*b.N)/total.Seconds(), "logins/s")
	b.ReportMetric(float64(getRoles)/float64(b.N), "GetRole-calls/1000-logins")
}
