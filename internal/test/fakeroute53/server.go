package fakeroute53

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// Actions, as counted by Server.Calls.
const (
	ActionGetHostedZone            = "GetHostedZone"
	ActionListResourceRecordSets   = "ListResourceRecordSets"
	ActionChangeResourceRecordSets = "ChangeResourceRecordSets"
	ActionGetChange                = "GetChange"
)

// Options configure a Server.
type Options struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Verifier checks SigV4; nil makes a new one (register credentials with
	// Server.Verifier().Issue or Add).
	Verifier *sigv4check.Verifier
	// RequestsPerSecond and Burst set the rate limit (0 = unlimited).
	RequestsPerSecond float64
	Burst             int
	// SyncDelay is how long a change stays PENDING before INSYNC.
	SyncDelay time.Duration
}

// Server is the fake. Safe for concurrent use.
type Server struct {
	now      func() time.Time
	verifier *sigv4check.Verifier

	mu        sync.Mutex
	zones     map[string]*zone
	nextID    int
	changes   map[string]time.Time
	syncDelay time.Duration
	calls     map[string]int
	throttled int
	rejected  int
	applied   map[string]int
	prior     int
	rps       float64
	burst     float64
	tokens    float64
	last      time.Time
}

// New returns an empty fake.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Verifier == nil {
		o.Verifier = sigv4check.NewVerifier(o.Now)
	}
	s := &Server{now: o.Now, verifier: o.Verifier, zones: map[string]*zone{}, changes: map[string]time.Time{},
		syncDelay: o.SyncDelay, calls: map[string]int{}, applied: map[string]int{}}
	s.SetRateLimit(o.RequestsPerSecond, o.Burst)
	return s
}

// Verifier returns the SigV4 verifier, to issue credentials for clients.
func (s *Server) Verifier() *sigv4check.Verifier { return s.verifier }

// CreateZone adds a hosted zone with its SOA and NS records and returns
// its ID (without the /hostedzone/ prefix).
func (s *Server) CreateZone(name string, private bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := fmt.Sprintf("Z%020d", s.nextID)
	n := fqdn(name)
	z := &zone{id: id, name: n, private: private, ref: fmt.Sprintf("ref-%d", s.nextID), sets: map[setKey]RecordSet{}}
	ttl900, ttl172800 := int64(900), int64(172800)
	soa := RecordSet{Name: n, Type: "SOA", TTL: &ttl900, Values: []string{"ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}}
	ns := RecordSet{Name: n, Type: "NS", TTL: &ttl172800, Values: []string{"ns-1.awsdns-00.com.", "ns-2.awsdns-00.net."}}
	z.sets[soa.key()], z.sets[ns.key()] = soa, ns
	s.zones[id] = z
	return id
}

// Seed adds or replaces record sets without any check (foreign records,
// test setup). It does not count as a request.
func (s *Server) Seed(zoneID string, sets ...RecordSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones[trimZoneID(zoneID)]
	if !ok {
		return fmt.Errorf("route53 fake: no hosted zone %s", zoneID)
	}
	for _, r := range sets {
		r = clone(r)
		r.Name = fqdn(r.Name)
		z.sets[r.key()] = r
	}
	return nil
}

// Apply runs a change batch as ChangeResourceRecordSets would (limits,
// all-or-nothing), without rate limit or counting.
func (s *Server) Apply(zoneID string, changes []Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones[trimZoneID(zoneID)]
	if !ok {
		return fmt.Errorf("route53 fake: no hosted zone %s", zoneID)
	}
	if msgs := z.apply(changes); msgs != nil {
		return errors.New("route53 fake: InvalidChangeBatch: " + strings.Join(msgs, "; "))
	}
	return nil
}

// Records returns the zone's record sets in Route53's order (copies).
func (s *Server) Records(zoneID string) []RecordSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones[trimZoneID(zoneID)]
	if !ok {
		return nil
	}
	out := z.sorted()
	for i := range out {
		out[i] = clone(out[i])
	}
	return out
}

// Calls returns the number of requests per action, refused ones included.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Throttled returns how many requests were refused for rate.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// Rejected returns how many change batches were refused as invalid
// (InvalidChangeBatch), e.g. a CREATE of an existing record.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// Applied returns how many changes of each action (CREATE, DELETE,
// UPSERT) were applied through ChangeResourceRecordSets.
func (s *Server) Applied() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.applied))
	for k, v := range s.applied {
		out[k] = v
	}
	return out
}

// ResetCounters zeroes Calls, Throttled, Rejected and Applied.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.throttled, s.rejected, s.applied = map[string]int{}, 0, 0, map[string]int{}
}

// SetRateLimit makes the fake answer Throttling beyond rps requests per
// second (token bucket of burst, at least 1); rps 0 removes the limit.
func (s *Server) SetRateLimit(rps float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rps, s.burst = rps, math.Max(float64(burst), 1)
	s.tokens, s.last = s.burst, s.now()
}

// SetRecordQuota makes the zone refuse (InvalidChangeBatch) any batch that
// would leave it holding more than n record sets, SOA and NS included, as
// Route53's records-per-hosted-zone quota does (10,000 by default on AWS);
// n 0 removes the limit, which is the fake's default. A batch that does not
// grow the zone is accepted even above the quota.
func (s *Server) SetRecordQuota(zoneID string, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones[trimZoneID(zoneID)]
	if !ok {
		return fmt.Errorf("route53 fake: no hosted zone %s", zoneID)
	}
	z.quota = n
	return nil
}

// InjectPriorRequestNotComplete makes the next n ChangeResourceRecordSets
// fail with PriorRequestNotComplete.
func (s *Server) InjectPriorRequestNotComplete(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prior = n
}

// allow takes a token; the caller holds mu.
func (s *Server) allow() bool {
	if s.rps <= 0 {
		return true
	}
	now := s.now()
	s.tokens = math.Min(s.burst, s.tokens+now.Sub(s.last).Seconds()*s.rps)
	s.last = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func trimZoneID(id string) string { return strings.TrimPrefix(id, "/hostedzone/") }

// Zone returns a zone's name (with the trailing dot) and whether it is
// private.
func (s *Server) Zone(zoneID string) (name string, private, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones[trimZoneID(zoneID)]
	if !ok {
		return "", false, false
	}
	return z.name, z.private, true
}
