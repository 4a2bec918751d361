package dns_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
	fake "github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
)

// registry registers w's collectors in a fresh registry.
func registry(t *testing.T, w *dns.Writer) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range w.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// gauge reads one metric's value (summing its series) from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() != labels[i+1] {
						continue metric
					}
				}
			}
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// legacyZone allocates the services' VIPs (writer off) and seeds the zone
// as an earlier version left it: each A record with its _ecsmesh-a TXT.
func legacyZone(t *testing.T, e *env, owner string) []fake.RecordSet {
	t.Helper()
	alloc, err := vip.NewAllocator(e.st, []netip.Prefix{vipRange}, nil)
	if err != nil {
		t.Fatal(err)
	}
	off := dns.NewReconciler(e.st, alloc, nil, e.options(owner, 1000))
	if err := off.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	ttl := int64(dns.DefaultTTL)
	var sets []fake.RecordSet
	for _, r := range ownedOf(off.Desired()) {
		sets = append(sets, fake.RecordSet{Name: r.Name, Type: "A", TTL: &ttl, Values: []string{r.VIP.String()}},
			fake.RecordSet{Name: dns.LegacyName(r.Name), Type: "TXT", TTL: &ttl, Values: []string{dns.OwnershipValue(owner)}})
	}
	if err := e.fake.Seed(e.zone, sets...); err != nil {
		t.Fatal(err)
	}
	return sets
}

func recordsOfType(e *env, typ string) []fake.RecordSet {
	var out []fake.RecordSet
	for _, s := range e.fake.Records(e.zone) {
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

func TestMigrationFromPerRecordTXT(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.fake.Seed(e.zone, foreign()...); err != nil {
		t.Fatal(err)
	}
	putServices(t, e.st, 0, 40)
	legacyZone(t, e, "cp")
	foreignBefore := foreignNow(e)
	aBefore := recordsOfType(e, "A")
	rec, w := e.reconciler(t, e.options("cp", 1000))
	reg := registry(t, w)
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	owned := ownedOf(rec.Desired())
	if msg := converged(e, owned, "cp"); msg != "" { // claim written, legacy TXTs gone
		t.Fatal(msg)
	}
	if got := recordsOfType(e, "A"); !reflect.DeepEqual(got, aBefore) {
		t.Fatalf("A records changed by the migration:\nbefore %+v\nafter  %+v", aBefore, got)
	}
	if got := foreignNow(e); !reflect.DeepEqual(got, foreignBefore) {
		t.Fatalf("foreign records changed:\nbefore %+v\nafter  %+v", foreignBefore, got)
	}
	ap := e.fake.Applied()
	if ap["CREATE"] != 1 || ap["DELETE"] != len(owned) || ap["UPSERT"] != 0 {
		t.Fatalf("applied %v, want one claim created and %d legacy records deleted", ap, len(owned))
	}
	// The claim went in before any legacy record was deleted: one request
	// here, and the planner orders claims first (see TestPlanChanges).
	if c := w.Calls()[dns.ActionChangeResourceRecordSets]; c != 1 {
		t.Fatalf("%d change requests", c)
	}
	st := rec.Status()
	if st.Footprint.Legacy != 0 || st.Footprint.Claims != 1 || st.Footprint.A != len(owned) {
		t.Fatalf("footprint %+v", st.Footprint)
	}
	if got := gauge(t, reg, "ecsmesh_dns_owned_records", "kind", "legacy"); got != 0 {
		t.Fatalf("legacy records gauge %v", got)
	}
	if got := gauge(t, reg, "ecsmesh_dns_owned_records", "kind", "a"); got != float64(len(owned)) {
		t.Fatalf("A records gauge %v", got)
	}
	// Converged: the next pass only lists.
	e.fake.ResetCounters()
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c[fake.ActionChangeResourceRecordSets] != 0 {
		t.Fatalf("second pass wrote: %v", c)
	}
}

func TestSecondOwnerWritesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.fake.Seed(e.zone, foreign()...); err != nil {
		t.Fatal(err)
	}
	putServices(t, e.st, 0, 20)
	first, _ := e.reconciler(t, e.options("cp-a", 1000))
	if err := first.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	zone := e.fake.Records(e.zone)

	// A second deployment, another owner ID, its own services, same zone.
	putDataplane(t, e.st, "default", "b-1", "only-b")
	e.fake.ResetCounters()
	second, w := e.reconciler(t, e.options("cp-b", 1000))
	reg := registry(t, w)
	err := second.Pass(ctx)
	if !errors.Is(err, dns.ErrOwnerConflict) {
		t.Fatalf("want ErrOwnerConflict, got %v", err)
	}
	for _, want := range []string{`"cp-a"`, `"cp-b"`, "_ecsmesh-owner.mesh.local", "ECSMESH_ROUTE53_OWNER_ID", "delete that TXT record", "no record under mesh.local is written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if c := e.fake.Calls(); c[fake.ActionChangeResourceRecordSets] != 0 {
		t.Fatalf("the second deployment wrote: %v", c)
	}
	if got := e.fake.Records(e.zone); !reflect.DeepEqual(got, zone) {
		t.Fatal("the zone changed")
	}
	st := second.Status()
	if len(st.OwnerConflicts) != 1 || st.OwnerConflicts[0].Owner != "cp-a" || !strings.Contains(st.LastError, "cp-a") {
		t.Fatalf("status %+v", st)
	}
	if got := testutil.ToFloat64(collector(t, w, "ecsmesh_dns_owner_conflicts_total")); got != 1 {
		t.Fatalf("conflicts counter %v", got)
	}
	if got := gauge(t, reg, "ecsmesh_dns_refused_domains"); got != 1 {
		t.Fatalf("refused domains gauge %v", got)
	}
	// The first deployment still converges and keeps its names (it does
	// not see only-b.mesh.local's VIP as a stale record: none was written).
	e.fake.ResetCounters()
	if err := first.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if msg := converged(e, ownedOf(first.Desired()), "cp-a"); msg != "" {
		t.Fatal(msg)
	}
}

// ownedOf drops the names foreign() holds.
func ownedOf(rs []dns.Record) []dns.Record {
	var out []dns.Record
	for _, r := range rs {
		if r.Name != "svc-00001.mesh.local" && r.Name != "other.mesh.local" {
			out = append(out, r)
		}
	}
	return out
}

func collector(t *testing.T, w *dns.Writer, name string) prometheus.Collector {
	t.Helper()
	for _, c := range w.Collectors() {
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if strings.Contains(d.String(), `"`+name+`"`) {
				return c
			}
		}
	}
	t.Fatalf("no collector %s", name)
	return nil
}

func TestRecordQuotaWarnsAndStaysWithin(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const quota = 30
	if err := e.fake.SetRecordQuota(e.zone, quota); err != nil {
		t.Fatal(err)
	}
	putServices(t, e.st, 0, 40)
	o := e.options("cp", 1000)
	o.RecordQuota = quota
	rec, w := e.reconciler(t, o)
	reg := registry(t, w)
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Records(e.zone)); n != quota {
		t.Fatalf("zone holds %d record sets, quota %d", n, quota)
	}
	if e.fake.Rejected() != 0 {
		t.Fatalf("%d batches rejected", e.fake.Rejected())
	}
	st := rec.Status()
	left := 0
	for _, c := range st.Conflicts {
		if strings.Contains(c.Reason, "ECSMESH_ROUTE53_RECORD_QUOTA") {
			left++
		}
	}
	if left != 40-(quota-3) || !st.QuotaWarning { // SOA, NS and the claim
		t.Fatalf("%d names left out, warning %v", left, st.QuotaWarning)
	}
	if gauge(t, reg, "ecsmesh_dns_zone_quota_warning") != 1 || gauge(t, reg, "ecsmesh_dns_zone_record_quota") != quota || gauge(t, reg, "ecsmesh_dns_zone_records") != quota {
		t.Fatal("quota gauges")
	}
	// Below 90% of the quota the warning clears.
	for i := range 40 {
		if err := store.DeleteRecord(ctx, e.st, store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: fmt.Sprintf("dp-%05d", i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	putServices(t, e.st, 0, 10)
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.Status().QuotaWarning || gauge(t, reg, "ecsmesh_dns_zone_quota_warning") != 0 {
		t.Fatal("warning still on")
	}
	if msg := converged(e, rec.Desired(), "cp"); msg != "" {
		t.Fatal(msg)
	}
}

// TestAcceptance1000Plus100 converges 1,000 services and 100 further names
// (standing in for external services: a HostnameGenerator gives 100 of the
// services a second name under extsvc.mesh.local) at 5 requests/s: within
// the write budget, at most 1,110 record sets in the zone, at most 1.01
// records of ecsmesh's per hostname.
func TestAcceptance1000Plus100(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	putServices(t, e.st, 0, 900)
	for i := 900; i < 1000; i++ {
		putDataplane(t, e.st, "ext", fmt.Sprintf("dp-%05d", i), fmt.Sprintf("svc-%05d", i))
	}
	gen := &resource.HostnameGenerator{Meta: resource.Meta{Type: resource.KindHostnameGenerator, Name: "extsvc"},
		Spec: resource.HostnameGeneratorSpec{Selector: resource.HostnameSelector{MeshService: &resource.LabelSelector{MatchLabels: map[string]string{resource.TagMesh: "ext"}}},
			Template: "{{ .DisplayName }}.extsvc.mesh.local"}}
	b, _ := resource.Marshal(gen)
	if _, err := store.CreateRecord(ctx, e.st, store.Record{Key: store.Key{Kind: resource.KindHostnameGenerator, Name: "extsvc"}, Spec: b}); err != nil {
		t.Fatal(err)
	}
	e.fake.SetRateLimit(dns.DefaultRequestsPerSecond, 5)
	rec, w := e.reconciler(t, e.options("cp", 0))
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	desired := rec.Desired()
	if len(desired) != 1100 {
		t.Fatalf("%d names", len(desired))
	}
	if msg := converged(e, desired, "cp"); msg != "" {
		t.Fatal(msg)
	}
	changes := w.Calls()[dns.ActionChangeResourceRecordSets]
	lb := dns.LowerBound(1100)
	if e.fake.Throttled() != 0 || e.fake.Rejected() != 0 || float64(changes) > math.Floor(1.2*float64(lb)) {
		t.Fatalf("%d change requests (lower bound %d), throttled %d, rejected %d", changes, lb, e.fake.Throttled(), e.fake.Rejected())
	}
	zone := len(e.fake.Records(e.zone))
	st := rec.Status()
	perName := float64(st.Footprint.Owned()) / float64(len(desired))
	if zone > 1110 || st.Footprint.Zone != zone || perName > 1.01 {
		t.Fatalf("zone %d record sets (status %+v), %.4f records per hostname", zone, st.Footprint, perName)
	}
	t.Logf("1000 services + 100 names: %d change requests (lower bound %d), zone %d record sets, %d of ecsmesh's: %.4f per hostname, %.4f per service",
		changes, lb, zone, st.Footprint.Owned(), perName, st.RecordsPerService)
}

// TestQuotaLeavesOutClaimThenNothing: when the claim does not fit, the
// writer changes nothing under the domain, not even a stale VIP record it
// would own once claimed.
func TestQuotaLeavesOutClaimThenNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ttl := int64(10)
	if err := e.fake.Seed(e.zone, fake.RecordSet{Name: "stale.mesh.local", Type: "A", TTL: &ttl, Values: []string{"127.1.200.9"}}); err != nil {
		t.Fatal(err)
	}
	before := e.fake.Records(e.zone) // SOA, NS, stale
	putServices(t, e.st, 0, 1)
	o := e.options("cp", 1000)
	o.RecordQuota = len(before)
	rec, w := e.reconciler(t, o)
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Records(e.zone); !reflect.DeepEqual(got, before) || w.Calls()[dns.ActionChangeResourceRecordSets] != 0 {
		t.Fatalf("zone changed or written: %+v, %v", got, w.Calls())
	}
	st := rec.Status()
	if len(st.Conflicts) != 3 || !st.QuotaWarning { // claim, svc-00000, stale
		t.Fatalf("status %+v", st)
	}
}

func TestWriterRefusesToRunWithoutVIPRanges(t *testing.T) {
	e := newEnv(t)
	o := e.options("cp", 1000)
	o.VIPRanges = nil
	_, w := e.reconciler(t, o)
	err := w.CheckZone(context.Background())
	if !errors.Is(err, dns.ErrZone) || !strings.Contains(err.Error(), "KUMA_IPAM_MESH_SERVICE_CIDR") {
		t.Fatalf("want a zone error naming the VIP range, got %v", err)
	}
}
