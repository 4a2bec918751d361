package dns_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
	fake "github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// env is a store, a fake Route53 with one private zone mesh.local, and an
// SDK config pointing at it through AWS_ENDPOINT_URL_ROUTE_53.
type env struct {
	fake *fake.Server
	zone string
	st   *memory.Store
	cfg  aws.Config
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	f := fake.New(fake.Options{})
	zid := f.CreateZone("mesh.local", true)
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	if t, ok := tb.(*testing.T); ok {
		t.Setenv("AWS_ENDPOINT_URL_ROUTE_53", srv.URL)
		t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	} else {
		tb.(*testing.B).Setenv("AWS_ENDPOINT_URL_ROUTE_53", srv.URL)
		tb.(*testing.B).Setenv("AWS_CONFIG_FILE", "/nonexistent")
		tb.(*testing.B).Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	}
	cred := f.Verifier().Issue(sigv4check.Principal{Account: "111122223333", ARN: "arn:aws:iam::111122223333:role/cp"}, time.Hour)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithCredentialsProvider(cred))
	if err != nil {
		tb.Fatal(err)
	}
	return &env{fake: f, zone: zid, st: memory.New(nil), cfg: cfg}
}

func (e *env) options(owner string, rps float64) dns.Options {
	return dns.Options{Domain: "mesh.local", HostedZoneID: e.zone, OwnerID: owner, RequestsPerSecond: rps, VIPRanges: []netip.Prefix{vipRange},
		Debounce: 20 * time.Millisecond, RefreshInterval: time.Hour, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
}

// reconciler builds a fresh CP instance's reconciler (as after a restart).
func (e *env) reconciler(tb testing.TB, o dns.Options) (*dns.Reconciler, *dns.Writer) {
	tb.Helper()
	alloc, err := vip.NewAllocator(e.st, []netip.Prefix{vipRange}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	w := dns.NewWriter(dns.NewRoute53Client(e.cfg), o)
	return dns.NewReconciler(e.st, alloc, w, o), w
}

func putDataplane(tb testing.TB, st store.Store, mesh, name string, services ...string) {
	tb.Helper()
	dp := &resource.Dataplane{Meta: resource.Meta{Type: resource.KindDataplane, Mesh: mesh, Name: name},
		Networking: resource.Networking{Address: "10.0.0.1"}}
	for i, s := range services {
		dp.Networking.Inbound = append(dp.Networking.Inbound, resource.Inbound{Port: 15000 + i,
			Tags: map[string]string{resource.TagService: s, resource.TagProtocol: "http"}})
	}
	b, err := resource.Marshal(dp)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := store.UpsertRecord(context.Background(), st, store.Record{Key: store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name}, Spec: b}); err != nil {
		tb.Fatal(err)
	}
}

// putServices stores one dataplane per service svc-00000 .. svc-(n-1).
func putServices(tb testing.TB, st store.Store, from, n int) {
	tb.Helper()
	for i := from; i < from+n; i++ {
		putDataplane(tb, st, "default", fmt.Sprintf("dp-%05d", i), fmt.Sprintf("svc-%05d", i))
	}
}

// vipRange is the VIP range of the tests' allocator.
var vipRange = netip.MustParsePrefix("127.1.0.0/16")

// converged reports why the zone does not hold exactly want's A records
// among those owned by owner (VIP values under mesh.local, no other
// owner's legacy mark), plus owner's one claim of mesh.local and none of
// owner's legacy marks, or "".
func converged(e *env, want []dns.Record, owner string) string {
	sets := e.fake.Records(e.zone)
	byKey := map[string]fake.RecordSet{}
	for _, s := range sets {
		byKey[s.Type+" "+strings.TrimSuffix(s.Name, ".")] = s
	}
	names := map[string]bool{}
	for _, r := range want {
		names[r.Name] = true
		a, ok := byKey["A "+r.Name]
		if !ok || len(a.Values) != 1 || a.Values[0] != r.VIP.String() || a.TTL == nil || *a.TTL != dns.DefaultTTL {
			return fmt.Sprintf("A %s: %+v, want %s", r.Name, a, r.VIP)
		}
	}
	claim, ok := byKey["TXT "+dns.ClaimName("mesh.local")]
	if !ok || len(claim.Values) != 1 || claim.Values[0] != dns.OwnershipValue(owner) {
		return fmt.Sprintf("claim of mesh.local: %+v, want %s", claim, dns.OwnershipValue(owner))
	}
	for _, s := range sets {
		n := strings.TrimSuffix(s.Name, ".")
		if s.Type == "TXT" && strings.HasPrefix(n, dns.LegacyPrefix) && len(s.Values) == 1 && s.Values[0] == dns.OwnershipValue(owner) {
			return "legacy ownership record left: " + n
		}
		if s.Type != "A" || names[n] || s.SetIdentifier != "" || !dns.InZone(n, "mesh.local") {
			continue
		}
		if _, marked := byKey["TXT "+dns.LegacyName(n)]; marked {
			continue // another owner's legacy mark
		}
		if len(s.Values) == 1 && vipRange.Contains(netip.MustParseAddr(s.Values[0])) {
			return "stale owned record " + n
		}
	}
	return ""
}

func waitFor(tb testing.TB, what string, cond func() string) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: only a bound for a hung test
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func foreign() []fake.RecordSet {
	ttl := int64(300)
	w := int64(10)
	return []fake.RecordSet{
		{Name: "db.mesh.local", Type: "A", TTL: &ttl, Values: []string{"10.0.0.9"}},
		{Name: "db.mesh.local", Type: "TXT", TTL: &ttl, Values: []string{`"v=spf1 -all"`}},
		{Name: "svc-00001.mesh.local", Type: "CNAME", TTL: &ttl, Values: []string{"elsewhere.example.com"}},
		{Name: "api.mesh.local", Type: "A", SetIdentifier: "blue", Weight: &w, TTL: &ttl, Values: []string{"10.0.0.10"}},
		{Name: "_ecsmesh-a.other.mesh.local", Type: "TXT", TTL: &ttl, Values: []string{dns.OwnershipValue("another-cp")}},
		{Name: "other.mesh.local", Type: "A", TTL: &ttl, Values: []string{"127.1.250.2"}}, // a VIP, but marked by another owner
		{Name: "ext.mesh.local", Type: "A", TTL: &ttl, Values: []string{"127.200.0.1"}},   // outside the VIP ranges
	}
}

func foreignNow(e *env) []fake.RecordSet {
	keep := map[string]bool{}
	for _, f := range foreign() {
		keep[f.Type+" "+f.Name+"."+" "+f.SetIdentifier] = true
	}
	var out []fake.RecordSet
	for _, s := range e.fake.Records(e.zone) {
		if keep[s.Type+" "+s.Name+" "+s.SetIdentifier] || s.Type == "SOA" || s.Type == "NS" {
			out = append(out, s)
		}
	}
	return out
}
