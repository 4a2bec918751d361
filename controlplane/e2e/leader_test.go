package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsmesh/ecsmesh/controlplane/cp"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
)

// ownerID is the Route53 owner both replicas share (ECSMESH_ROUTE53_OWNER_ID).
const ownerID = "ecsmesh-e2e"

// vipRange is the default KUMA_IPAM_MESH_SERVICE_CIDR.
var vipRange = netip.MustParsePrefix("127.1.0.0/16")

func dataplaneYAML(name, service, address string) string {
	return fmt.Sprintf(`type: Dataplane
mesh: default
name: %s
labels: {kuma.io/workload: %s}
networking:
  address: %s
  inbound:
  - port: 15000
    servicePort: 8080
    tags: {kuma.io/service: %s, kuma.io/protocol: http}
`, name, service, address, service)
}

// foreignRecords are records ecsmesh does not own: a plain A record, a TXT
// at a name of its own, a CNAME, and a name held by another ecsmesh
// deployment (a VIP marked by a legacy ownership TXT with another owner).
// None may change.
func foreignRecords() []fakeroute53.RecordSet {
	ttl := func(v int64) *int64 { return &v }
	return []fakeroute53.RecordSet{
		{Name: "legacy.mesh.local.", Type: "A", TTL: ttl(300), Values: []string{"10.9.9.9"}},
		{Name: "mail.mesh.local.", Type: "TXT", TTL: ttl(3600), Values: []string{`"v=spf1 -all"`}},
		{Name: "www.mesh.local.", Type: "CNAME", TTL: ttl(60), Values: []string{"legacy.mesh.local"}},
		{Name: "other.mesh.local.", Type: "A", TTL: ttl(10), Values: []string{"127.1.250.1"}},
		{Name: dns.LegacyName("other.mesh.local.") + ".", Type: "TXT", TTL: ttl(10), Values: []string{dns.OwnershipValue("someone-else")}},
	}
}

// zoneView is the part of the zone the test reads.
type zoneView struct {
	all     []fakeroute53.RecordSet
	foreign []fakeroute53.RecordSet
	aByName map[string][]fakeroute53.RecordSet // A record sets per name
}

func viewZone(c *devcloud.Cloud) zoneView {
	v := zoneView{all: c.Route53().Records(c.ZoneID()), aByName: map[string][]fakeroute53.RecordSet{}}
	foreign := map[string]bool{}
	for _, f := range foreignRecords() {
		foreign[f.Name+" "+f.Type] = true
	}
	for _, r := range v.all {
		if foreign[r.Name+" "+r.Type] {
			v.foreign = append(v.foreign, r)
		}
		if r.Type == "A" {
			v.aByName[r.Name] = append(v.aByName[r.Name], r)
		}
	}
	return v
}

// serviceRecord checks the A record of service and the deployment's claim
// of mesh.local (no per-record ownership TXT) and returns its VIP, or why
// they are not (yet) right.
func (v zoneView) serviceRecord(service string) (netip.Addr, error) {
	name := service + ".mesh.local."
	as := v.aByName[name]
	if len(as) != 1 {
		return netip.Addr{}, fmt.Errorf("%s: %d A record sets", name, len(as))
	}
	a := as[0]
	if a.TTL == nil || *a.TTL != 10 || len(a.Values) != 1 || a.SetIdentifier != "" || a.Alias != nil {
		return netip.Addr{}, fmt.Errorf("%s: A record %+v, want TTL 10 and one value", name, a)
	}
	ip, err := netip.ParseAddr(a.Values[0])
	if err != nil || !vipRange.Contains(ip) {
		return netip.Addr{}, fmt.Errorf("%s: value %q is not a VIP in %s", name, a.Values[0], vipRange)
	}
	var claim []fakeroute53.RecordSet
	for _, r := range v.all {
		if r.Type == "TXT" && r.Name == dns.ClaimName("mesh.local")+"." {
			claim = append(claim, r)
		}
		if r.Type == "TXT" && r.Name == dns.LegacyName(name)+"." {
			return netip.Addr{}, fmt.Errorf("%s: per-record ownership TXT %+v left", name, r)
		}
	}
	if len(claim) != 1 || !reflect.DeepEqual(claim[0].Values, []string{dns.OwnershipValue(ownerID)}) {
		return netip.Addr{}, fmt.Errorf("%s: claims of mesh.local %+v, want one %s", name, claim, dns.OwnershipValue(ownerID))
	}
	return ip, nil
}

// waitForServices polls the zone until every service has its records.
func waitForServices(t *testing.T, c *devcloud.Cloud, services ...string) map[string]netip.Addr {
	t.Helper()
	var vips map[string]netip.Addr
	waitFor(t, settleDeadline, "Route53 records of "+strings.Join(services, ", "), func() (bool, string) {
		v := viewZone(c)
		vips = map[string]netip.Addr{}
		for _, s := range services {
			ip, err := v.serviceRecord(s)
			if err != nil {
				return false, err.Error() + "; zone: " + strings.Join(c.Records(), " | ")
			}
			vips[s] = ip
		}
		return true, ""
	})
	return vips
}

// leaseHolder reads the unexpired holder of the dns-writer lease.
func leaseHolder(ctx context.Context, conn *pgx.Conn, schema string) (string, error) {
	var holder string
	err := conn.QueryRow(ctx, `SELECT holder FROM `+pgx.Identifier{schema, "leases"}.Sanitize()+
		` WHERE name = $1 AND expires_at > now()`, cp.LeaseDNS).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return holder, err
}

// TestLeaderKilledRoute53WriterMovesOn runs two CPs on one PostgreSQL
// schema against the local AWS, lets the leader write web and redis into
// the private zone, kills the leader with SIGKILL (the lease is not
// released), applies a new service through the survivor and waits for the
// survivor to take the dns-writer lease and write it. VIPs must not move,
// no record set may be duplicated, no batch may be rejected, and records
// ecsmesh does not own must stay byte-identical.
func TestLeaderKilledRoute53WriterMovesOn(t *testing.T) {
	pgEnv, dsn, schema := postgresEnv(t)
	logs := &lockedBuffer{}
	cloud, err := devcloud.Start(t.Context(), devcloud.Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		// Tasks are not needed: the Dataplanes are applied by an operator.
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cloud.Close)
	if err := cloud.Route53().Seed(cloud.ZoneID(), foreignRecords()...); err != nil {
		t.Fatal(err)
	}
	foreignBefore := viewZone(cloud).foreign
	if len(foreignBefore) != len(foreignRecords()) {
		t.Fatalf("seeded %d foreign records, zone holds %d", len(foreignRecords()), len(foreignBefore))
	}

	env := append(cloud.CPEnv(), pgEnv...)
	env = append(env, "ECSMESH_ROUTE53_OWNER_ID="+ownerID)
	cps := map[string]*cpProcess{}
	for _, name := range []string{"cp-a", "cp-b"} {
		cps[name] = startCP(t, name, env)
	}

	cps["cp-a"].apply(t, "type: Mesh\nname: default\n---\n"+
		dataplaneYAML("web-1", "web", "10.0.0.1")+"---\n"+
		dataplaneYAML("redis-1", "redis", "10.0.0.2"))
	before := waitForServices(t, cloud, "web", "redis")
	t.Logf("records written: web=%s redis=%s", before["web"], before["redis"])

	conn := pgConnect(t, dsn)
	defer conn.Close(context.Background())
	var leader string
	waitFor(t, settleDeadline, "a holder of lease "+cp.LeaseDNS, func() (bool, string) {
		h, err := leaseHolder(t.Context(), conn, schema)
		leader = h
		return err == nil && cps[h] != nil, fmt.Sprintf("holder %q, err %v", h, err)
	})
	survivorName := "cp-a"
	if leader == "cp-a" {
		survivorName = "cp-b"
	}
	survivor := cps[survivorName]
	t.Logf("leader %s; killing it with SIGKILL", leader)
	killedAt := time.Now()
	cps[leader].kill(t)

	survivor.apply(t, dataplaneYAML("cache-1", "cache", "10.0.0.3"))

	// The lease (TTL 15 s) must expire before the survivor can take it; it
	// then retries every 5 s and debounces about 1 s. 60 s is a generous
	// bound, not the expectation; the measured times are logged.
	var leaseTakenAfter time.Duration
	waitFor(t, settleDeadline, "the survivor holding the lease and cache.mesh.local written", func() (bool, string) {
		if leaseTakenAfter == 0 {
			if h, err := leaseHolder(t.Context(), conn, schema); err == nil && h == survivorName {
				leaseTakenAfter = time.Since(killedAt)
			}
		}
		_, err := viewZone(cloud).serviceRecord("cache")
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	recordAfter := time.Since(killedAt)
	if leaseTakenAfter == 0 {
		if h, err := leaseHolder(t.Context(), conn, schema); err != nil || h != survivorName {
			t.Errorf("cache.mesh.local was written but lease %s is held by %q (err %v), not %s", cp.LeaseDNS, h, err, survivorName)
		}
		leaseTakenAfter = recordAfter
	}
	t.Logf("takeover after SIGKILL of %s: %s took lease %s after %v; cache.mesh.local in the zone after %v (lease TTL 15 s)",
		leader, survivorName, cp.LeaseDNS, leaseTakenAfter.Round(time.Millisecond), recordAfter.Round(time.Millisecond))

	after := waitForServices(t, cloud, "web", "redis", "cache")
	for _, s := range []string{"web", "redis"} {
		if after[s] != before[s] {
			t.Errorf("VIP of %s moved from %s to %s when the writer changed", s, before[s], after[s])
		}
	}
	seen := map[netip.Addr]string{}
	for s, ip := range after {
		if other, dup := seen[ip]; dup {
			t.Errorf("services %s and %s share VIP %s", s, other, ip)
		}
		seen[ip] = s
	}
	v := viewZone(cloud)
	sets := map[string]int{}
	for _, r := range v.all {
		sets[r.Name+" "+r.Type]++
	}
	var dups []string
	for k, n := range sets {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Errorf("duplicated record sets: %v", dups)
	}
	if n := cloud.Route53().Rejected(); n != 0 {
		t.Errorf("Route53 rejected %d change batches (InvalidChangeBatch)", n)
	}
	if !reflect.DeepEqual(v.foreign, foreignBefore) {
		t.Errorf("foreign records changed:\nbefore %+v\nafter  %+v", foreignBefore, v.foreign)
	}
	t.Logf("zone:\n  %s\nRoute53 calls %v, applied changes %v, throttled %d",
		strings.Join(cloud.Records(), "\n  "), cloud.Route53().Calls(), cloud.Route53().Applied(), cloud.Route53().Throttled())
	if t.Failed() {
		t.Logf("---- local AWS log ----\n%s", logs.String())
	}
}
