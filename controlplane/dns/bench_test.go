package dns_test

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	fake "github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
)

// convergeResult is what one convergence from an empty zone cost.
type convergeResult struct {
	changeCalls, listCalls, zoneCalls, idleCalls, idleListCalls, idleChangeCalls, throttled, rejected int
	// changes is the record changes applied; zoneRecords the record sets
	// in the zone after convergence and owned ecsmesh's share of them.
	changes, zoneRecords, owned int
	recordsPerService           float64
}

func (r convergeResult) apiCalls() int { return r.changeCalls + r.listCalls + r.zoneCalls }

// converge stores n services, converges a zone holding foreign records from
// it with the default rate limit (5 requests/s) against a fake enforcing
// 5 requests/s, then runs one idle refresh.
func converge(tb testing.TB, n int, timer func(on bool)) convergeResult {
	ctx := context.Background()
	e := newEnv(tb)
	if err := e.fake.Seed(e.zone, foreign()...); err != nil {
		tb.Fatal(err)
	}
	before := foreignNow(e)
	putServices(tb, e.st, 0, n)
	e.fake.SetRateLimit(dns.DefaultRequestsPerSecond, 5)
	o := e.options("cp-bench", 0) // 0: the default 5 requests/s
	o.RecordQuota = 2 * n         // 10,000 services need a raised quota
	rec, _ := e.reconciler(tb, o)
	timer(true)
	if err := rec.Pass(ctx); err != nil {
		tb.Fatal(err)
	}
	timer(false)
	c := e.fake.Calls()
	res := convergeResult{changeCalls: c[fake.ActionChangeResourceRecordSets], listCalls: c[fake.ActionListResourceRecordSets],
		zoneCalls: c[fake.ActionGetHostedZone], throttled: e.fake.Throttled(), rejected: e.fake.Rejected()}
	for _, v := range e.fake.Applied() {
		res.changes += v
	}
	st := rec.Status()
	res.zoneRecords, res.owned, res.recordsPerService = len(e.fake.Records(e.zone)), st.Footprint.Owned(), st.RecordsPerService
	if st.Footprint.Zone != res.zoneRecords {
		tb.Fatalf("status counts %d record sets, the zone holds %d", st.Footprint.Zone, res.zoneRecords)
	}
	owned := ownedOf(rec.Desired()) // svc-00001 is held by a foreign CNAME
	if msg := converged(e, owned, "cp-bench"); msg != "" {
		tb.Fatal(msg)
	}
	if got := foreignNow(e); !reflect.DeepEqual(got, before) {
		tb.Fatal("foreign records changed")
	}
	e.fake.ResetCounters()
	if err := rec.Pass(ctx); err != nil {
		tb.Fatal(err)
	}
	ic := e.fake.Calls()
	res.idleChangeCalls = ic[fake.ActionChangeResourceRecordSets]
	res.idleListCalls = ic[fake.ActionListResourceRecordSets]
	for _, v := range ic {
		res.idleCalls += v
	}
	res.throttled += e.fake.Throttled()
	return res
}

// TestAcceptance1000 is the acceptance: against the fake limited to
// 5 requests/s, 1,000 services converge with no request refused for rate,
// within 1.2× the lower bound plus the list calls, foreign records
// byte-identical, and an idle refresh only lists.
func TestAcceptance1000(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds of rate-limited requests")
	}
	r := converge(t, 1000, func(bool) {})
	lb := dns.LowerBound(1000 - 1) // svc-00001 is held by a foreign record
	if r.throttled != 0 || r.rejected != 0 {
		t.Fatalf("throttled %d, rejected %d", r.throttled, r.rejected)
	}
	if float64(r.changeCalls) > math.Floor(1.2*float64(lb)) {
		t.Fatalf("%d change calls, lower bound %d", r.changeCalls, lb)
	}
	if r.idleChangeCalls != 0 || r.idleCalls != r.idleListCalls {
		t.Fatalf("idle refresh wrote: %+v", r)
	}
	// 999 A records and one claim for 999 services with records.
	if r.owned != 1000 || r.recordsPerService > 1.01 {
		t.Fatalf("%d records of ecsmesh's, %.4f per service", r.owned, r.recordsPerService)
	}
	t.Logf("1000 services: %d API calls (%d GetHostedZone, %d list, %d change; lower bound %d), %d record changes; zone %d record sets, %d of ecsmesh's, %.4f per service; idle refresh %d calls (all list)",
		r.apiCalls(), r.zoneCalls, r.listCalls, r.changeCalls, lb, r.changes, r.zoneRecords, r.owned, r.recordsPerService, r.idleCalls)
}

func benchConverge(b *testing.B, n int) {
	var r convergeResult
	for range b.N {
		b.StopTimer()
		r = converge(b, n, func(on bool) {
			if on {
				b.StartTimer()
			} else {
				b.StopTimer()
			}
		})
		b.StartTimer()
	}
	b.ReportMetric(float64(r.apiCalls()), "api-calls")
	b.ReportMetric(float64(r.changeCalls), "change-calls")
	b.ReportMetric(float64(dns.LowerBound(n-1)), "lower-bound") // svc-00001 is held by a foreign CNAME
	b.ReportMetric(float64(r.listCalls), "list-calls")
	b.ReportMetric(float64(r.idleCalls), "idle-calls/refresh")
	b.ReportMetric(float64(r.idleChangeCalls), "idle-change-calls")
	b.ReportMetric(float64(r.throttled), "throttled")
	b.ReportMetric(float64(r.changes), "record-changes")
	b.ReportMetric(float64(r.zoneRecords), "zone-records")
	b.ReportMetric(r.recordsPerService, "records/service")
}

// BenchmarkConverge1000 converges 1,000 services from an empty zone at the
// default 5 requests/s; ns/op is the wall time.
func BenchmarkConverge1000(b *testing.B) { benchConverge(b, 1000) }

// BenchmarkConverge10000 is the same for 10,000 services.
func BenchmarkConverge10000(b *testing.B) { benchConverge(b, 10000) }
