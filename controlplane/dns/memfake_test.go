package dns_test

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"

	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	fake "github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
)

// memRoute53 is an in-memory, stateful dns.Route53API (external-dns style)
// over the fake's zone model, without HTTP: for writer unit tests. It
// answers Throttling to the first throttle calls.
type memRoute53 struct {
	f        *fake.Server
	mu       sync.Mutex
	throttle int
	calls    int
}

func (m *memRoute53) gate() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.throttle > 0 {
		m.throttle--
		return &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}
	}
	return nil
}

func (m *memRoute53) GetHostedZone(_ context.Context, in *route53.GetHostedZoneInput, _ ...func(*route53.Options)) (*route53.GetHostedZoneOutput, error) {
	if err := m.gate(); err != nil {
		return nil, err
	}
	name, private, ok := m.f.Zone(aws.ToString(in.Id))
	if !ok {
		return nil, &types.NoSuchHostedZone{Message: aws.String("no zone")}
	}
	return &route53.GetHostedZoneOutput{HostedZone: &types.HostedZone{Id: in.Id, Name: aws.String(name), Config: &types.HostedZoneConfig{PrivateZone: private}}}, nil
}

func (m *memRoute53) ListResourceRecordSets(_ context.Context, in *route53.ListResourceRecordSetsInput, _ ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	if err := m.gate(); err != nil {
		return nil, err
	}
	out := &route53.ListResourceRecordSetsOutput{} // one page: pagination is the wire fake's test
	for _, s := range m.f.Records(aws.ToString(in.HostedZoneId)) {
		rs := types.ResourceRecordSet{Name: aws.String(s.Name), Type: types.RRType(s.Type), TTL: s.TTL, Weight: s.Weight}
		if s.SetIdentifier != "" {
			rs.SetIdentifier = aws.String(s.SetIdentifier)
		}
		for _, v := range s.Values {
			rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
		}
		out.ResourceRecordSets = append(out.ResourceRecordSets, rs)
	}
	return out, nil
}

func (m *memRoute53) ChangeResourceRecordSets(_ context.Context, in *route53.ChangeResourceRecordSetsInput, _ ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error) {
	if err := m.gate(); err != nil {
		return nil, err
	}
	var cs []fake.Change
	for _, c := range in.ChangeBatch.Changes {
		rs := c.ResourceRecordSet
		s := fake.RecordSet{Name: aws.ToString(rs.Name), Type: string(rs.Type), TTL: rs.TTL, Weight: rs.Weight, SetIdentifier: aws.ToString(rs.SetIdentifier)}
		for _, r := range rs.ResourceRecords {
			s.Values = append(s.Values, aws.ToString(r.Value))
		}
		cs = append(cs, fake.Change{Action: string(c.Action), Set: s})
	}
	if err := m.f.Apply(aws.ToString(in.HostedZoneId), cs); err != nil {
		return nil, &types.InvalidChangeBatch{Message: aws.String(err.Error())}
	}
	return &route53.ChangeResourceRecordSetsOutput{ChangeInfo: &types.ChangeInfo{Id: aws.String("/change/C1"), Status: types.ChangeStatusPending}}, nil
}

// stepClock is a Clock whose After returns at once and advances Now by d,
// recording every wait.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func TestWriterRateLimitAndBackoffWithInjectedClock(t *testing.T) {
	ctx := context.Background()
	f := fake.New(fake.Options{})
	zid := f.CreateZone("mesh.local", true)
	api := &memRoute53{f: f, throttle: 3}
	clock := &stepClock{now: time.Unix(1_700_000_000, 0)}
	w := dns.NewWriter(api, dns.Options{Domain: "mesh.local", HostedZoneID: zid, OwnerID: "cp", Clock: clock,
		VIPRanges:      []netip.Prefix{netip.MustParsePrefix("127.1.0.0/16")},
		InitialBackoff: time.Second, MaxBackoff: 3 * time.Second})
	if err := w.CheckZone(ctx); err != nil {
		t.Fatal(err)
	}
	var desired []dns.Record
	for i := range 1200 {
		desired = append(desired, dns.Record{Name: "s" + itoa(i) + ".mesh.local", VIP: mustAddr(i)})
	}
	res, err := w.Sync(ctx, desired)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != dns.LowerBound(1200) {
		t.Fatalf("%d change requests, lower bound %d", res.Requests, dns.LowerBound(1200))
	}
	// Backoffs after the three throttles: 1s, 2s, 3s (capped).
	var backoffs []time.Duration
	for _, d := range clock.waits {
		if d >= time.Second {
			backoffs = append(backoffs, d)
		}
	}
	if len(backoffs) != 3 || backoffs[0] != time.Second || backoffs[1] != 2*time.Second || backoffs[2] != 3*time.Second {
		t.Fatalf("backoffs %v", backoffs)
	}
	// The limiter never lets two requests closer than 1/5 s on the clock:
	// total virtual time covers every request at 5/s.
	elapsed := clock.Now().Sub(time.Unix(1_700_000_000, 0))
	if min := time.Duration(api.calls-1) * 200 * time.Millisecond; elapsed < min {
		t.Fatalf("%d requests in %v of clock time, faster than 5/s", api.calls, elapsed)
	}
	// Idle: list only.
	before := api.calls
	if res, err := w.Sync(ctx, desired); err != nil || res.Requests != 0 || api.calls != before+1 {
		t.Fatalf("idle sync: %+v, %v, %d calls", res, err, api.calls-before)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func mustAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(i%250 + 2)})
}
