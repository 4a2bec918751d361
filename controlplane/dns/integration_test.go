package dns_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/election"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
	fake "github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
)

func TestConvergeFromEmptyThenIdle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	putDataplane(t, e.st, "default", "web-1", "web")
	putDataplane(t, e.st, "default", "redis-1", "redis")
	putDataplane(t, e.st, "default", "redis-2", "redis")
	gen := &resource.HostnameGenerator{Meta: resource.Meta{Type: resource.KindHostnameGenerator, Name: "svc"},
		Spec: resource.HostnameGeneratorSpec{Selector: resource.HostnameSelector{MeshService: &resource.LabelSelector{MatchLabels: map[string]string{resource.TagService: "redis"}}},
			Template: "{{ .DisplayName }}.svc.mesh.local"}}
	b, _ := resource.Marshal(gen)
	if _, err := store.CreateRecord(ctx, e.st, store.Record{Key: store.Key{Kind: resource.KindHostnameGenerator, Name: "svc"}, Spec: b}); err != nil {
		t.Fatal(err)
	}
	rec, w := e.reconciler(t, e.options("cp", 1000))
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	want := rec.Desired()
	if len(want) != 3 {
		t.Fatalf("desired %+v", want)
	}
	if msg := converged(e, want, "cp"); msg != "" {
		t.Fatal(msg)
	}
	if w.Calls()[dns.ActionChangeResourceRecordSets] != 1 {
		t.Fatalf("calls %v", w.Calls())
	}
	e.fake.ResetCounters()
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if c := e.fake.Calls(); c[fake.ActionChangeResourceRecordSets] != 0 || c[fake.ActionListResourceRecordSets] != 1 {
		t.Fatalf("idle refresh made calls %v; want the list only", c)
	}
	st := rec.Status()
	if !st.Route53 || st.Zone != "mesh.local" || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}
}

func TestForeignRecordsUntouchedAndRestartWritesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.fake.Seed(e.zone, foreign()...); err != nil {
		t.Fatal(err)
	}
	before := foreignNow(e)
	putServices(t, e.st, 0, 5)
	putDataplane(t, e.st, "default", "other-1", "other") // name held by another owner
	rec, _ := e.reconciler(t, e.options("cp", 1000))
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := foreignNow(e); !reflect.DeepEqual(got, before) {
		t.Fatalf("foreign records changed:\n%+v\n%+v", before, got)
	}
	var owned []dns.Record
	for _, r := range rec.Desired() {
		if r.Name != "svc-00001.mesh.local" && r.Name != "other.mesh.local" {
			owned = append(owned, r)
		}
	}
	if msg := converged(e, owned, "cp"); msg != "" {
		t.Fatal(msg)
	}
	if c := rec.Status().Conflicts; len(c) != 2 {
		t.Fatalf("conflicts %+v", c)
	}
	// A new CP instance (restart) on the same store writes nothing.
	e.fake.ResetCounters()
	rec2, w2 := e.reconciler(t, e.options("cp", 1000))
	if err := rec2.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if c := w2.Calls(); c[dns.ActionChangeResourceRecordSets] != 0 {
		t.Fatalf("restart wrote: %v", c)
	}
	if !reflect.DeepEqual(rec2.Desired(), rec.Desired()) {
		t.Fatal("VIPs or names changed across restart")
	}
}

func TestDeleteServiceRemovesRecordsAndRetiresVIP(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	putServices(t, e.st, 0, 3)
	rec, _ := e.reconciler(t, e.options("cp", 1000))
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	old, err := vip.Lookup(ctx, e.st, "default", "svc-00001")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteRecord(ctx, e.st, store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "dp-00001"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rec.Desired()) != 2 {
		t.Fatalf("desired %+v", rec.Desired())
	}
	if msg := converged(e, rec.Desired(), "cp"); msg != "" {
		t.Fatal(msg)
	}
	if _, err := vip.Lookup(ctx, e.st, "default", "svc-00001"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("VIP not retired: %v", err)
	}
	r, err := e.st.Get(ctx, store.Key{Kind: vip.KindReservation, Name: old.String()})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ State string }
	_ = json.Unmarshal(r.Spec, &doc)
	if doc.State != vip.StateRetired {
		t.Fatalf("reservation %s", r.Spec)
	}
	// A new service does not get the retired address.
	putDataplane(t, e.st, "default", "new-1", "new")
	if err := rec.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := vip.Lookup(ctx, e.st, "default", "new"); v == old {
		t.Fatal("retired VIP reused before the range was exhausted")
	}
}

func TestConvergesUnderThrottlingAndPriorRequest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	putServices(t, e.st, 0, 600)
	e.fake.SetRateLimit(20, 1)
	e.fake.InjectPriorRequestNotComplete(2)
	rec, w := e.reconciler(t, e.options("cp", 1000)) // a client far faster than the fake allows
	var err error
	for range 20 {
		if err = rec.Pass(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if msg := converged(e, rec.Desired(), "cp"); msg != "" {
		t.Fatal(msg)
	}
	if e.fake.Throttled() == 0 {
		t.Fatal("the test did not throttle")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(w.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var requests, throttled float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "ecsmesh_dns_route53_throttled_total":
				throttled += m.GetCounter().GetValue()
			case "ecsmesh_dns_route53_requests_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() == "throttled" {
						requests += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if requests == 0 || throttled != requests {
		t.Errorf("the fake throttled %d requests; ecsmesh_dns_route53_requests_total{result=throttled} = %v, ecsmesh_dns_route53_throttled_total = %v (want equal, not 0)", e.fake.Throttled(), requests, throttled)
	}
	if e.fake.Rejected() != 0 {
		t.Fatalf("%d batches rejected", e.fake.Rejected())
	}
}

func TestZoneCheckKeepsWriterOff(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env) string
	}{
		{"missing", func(e *env) string { return "ZMISSING" }},
		{"public", func(e *env) string { return e.fake.CreateZone("mesh.local", false) }},
		{"domain outside zone", func(e *env) string { return e.fake.CreateZone("other.local", true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			putServices(t, e.st, 0, 2)
			o := e.options("cp", 1000)
			o.HostedZoneID = tt.setup(e)
			rec, _ := e.reconciler(t, o)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rec.Run(ctx) }()
			waitFor(t, "VIPs allocated with the writer off", func() string {
				if s := rec.Status(); s.Passes == 0 || len(s.Records) != 2 {
					return "no pass yet"
				}
				return ""
			})
			cancel()
			<-done
			s := rec.Status()
			if s.Route53 || s.Route53Error == "" {
				t.Fatalf("status %+v", s)
			}
			if c := e.fake.Calls(); c[fake.ActionChangeResourceRecordSets] != 0 || c[fake.ActionListResourceRecordSets] != 0 {
				t.Fatalf("calls %v", c)
			}
		})
	}
}

func TestRunDebouncesAndFollowsStore(t *testing.T) {
	e := newEnv(t)
	rec, w := e.reconciler(t, e.options("cp", 1000))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	waitFor(t, "first pass", func() string {
		if rec.Status().Passes == 0 {
			return "no pass"
		}
		return ""
	})
	putServices(t, e.st, 0, 300) // one apply of many services
	waitFor(t, "convergence", func() string {
		if len(rec.Desired()) != 300 {
			return "not all desired yet"
		}
		return converged(e, rec.Desired(), "cp")
	})
	cancel()
	<-done
	if n := w.Calls()[dns.ActionChangeResourceRecordSets]; n > 3 {
		t.Fatalf("%d change requests for one apply of 300 services", n)
	}
}

func TestLeaderChangeMidRun(t *testing.T) {
	e := newEnv(t)
	putServices(t, e.st, 0, 200)
	type replica struct {
		rec    *dns.Reconciler
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(name string) *replica {
		rec, _ := e.reconciler(t, e.options("cp", 1000)) // one deployment: shared owner
		el, err := election.New(election.Config{Leaser: e.st, Name: "route53-writer", Holder: name, TTL: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{rec: rec, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			_ = el.Run(ctx, func(ctx context.Context) { _ = rec.Run(ctx) }, nil)
		}()
		return r
	}
	a := start("a")
	waitFor(t, "a converges", func() string {
		if len(a.rec.Desired()) != 200 {
			return "a has not passed yet"
		}
		return converged(e, a.rec.Desired(), "cp")
	})
	b := start("b")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); putServices(t, e.st, 200, 200) }()
	time.Sleep(30 * time.Millisecond) // let a start on the new services, then stop it
	a.cancel()
	<-a.done
	wg.Wait()
	waitFor(t, "b converges", func() string {
		if len(b.rec.Desired()) != 400 {
			return "b has not seen every service"
		}
		return converged(e, b.rec.Desired(), "cp")
	})
	b.cancel()
	<-b.done
	if e.fake.Rejected() != 0 {
		t.Fatalf("%d change batches rejected (double writes)", e.fake.Rejected())
	}
	ap := e.fake.Applied()
	if ap["CREATE"] != 401 || ap["DELETE"] != 0 || ap["UPSERT"] != 0 {
		t.Fatalf("applied %v, want exactly 401 creates (400 A records, one claim)", ap)
	}
}

func TestValidateGenerator(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	putDataplane(t, e.st, "default", "web-1", "web")
	gen := &resource.HostnameGenerator{Meta: resource.Meta{Type: resource.KindHostnameGenerator, Name: "g"},
		Spec: resource.HostnameGeneratorSpec{Template: `{{ label "team" }}.mesh.local`}}
	verr, err := dns.ValidateGenerator(ctx, e.st, gen)
	if err != nil {
		t.Fatal(err)
	}
	if verr == nil || verr.Violations[0].Field != "spec.template" {
		t.Fatalf("want a spec.template violation, got %v", verr)
	}
	gen.Spec.Template = "{{ .DisplayName }}.{{ .Mesh }}.mesh.local"
	if verr, _ := dns.ValidateGenerator(ctx, e.st, gen); verr != nil {
		t.Fatalf("unexpected %v", verr)
	}
}
