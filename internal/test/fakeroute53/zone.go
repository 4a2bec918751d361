// Package fakeroute53 is a fake Amazon Route53 for tests and the local run: an
// http.Handler speaking the real REST/XML wire protocol (version
// 2013-04-01) for GetHostedZone, ListResourceRecordSets (with pagination),
// ChangeResourceRecordSets (with AWS's batch limits and all-or-nothing
// CREATE/DELETE/UPSERT semantics) and GetChange, driven by the real SDK
// client through AWS_ENDPOINT_URL_ROUTE_53. Requests must carry a valid
// SigV4 signature (internal/test/sigv4check). A configurable token-bucket rate limit
// answers Throttling, PriorRequestNotComplete can be injected, and a zone
// may be given a record set quota (SetRecordQuota) that refuses a batch
// leaving it fuller (the message is the fake's wording).
package fakeroute53

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// RecordSet is one resource record set as the fake stores it.
type RecordSet struct {
	// Name is fully qualified, lower-case, with the trailing dot.
	Name string
	Type string
	// SetIdentifier and Weight are set on weighted record sets.
	SetIdentifier string
	Weight        *int64
	TTL           *int64
	Values        []string
	Alias         *Alias
}

// Alias is an alias target.
type Alias struct {
	HostedZoneID         string
	DNSName              string
	EvaluateTargetHealth bool
}

// Change is one change of a batch.
type Change struct {
	Action string // CREATE, DELETE, UPSERT
	Set    RecordSet
}

type setKey struct{ name, typ, id string }

func (r *RecordSet) key() setKey { return setKey{r.Name, r.Type, r.SetIdentifier} }

// Zone is a hosted zone.
type zone struct {
	id      string
	name    string
	private bool
	ref     string
	sets    map[setKey]RecordSet
	// quota is the most record sets the zone may hold (0: no limit).
	quota int
}

// fqdn lower-cases name and adds the trailing dot.
func fqdn(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if !strings.HasSuffix(n, ".") {
		n += "."
	}
	return n
}

// sortKey orders names as Route53 does: labels reversed, then type.
func sortKey(name string) string {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, ".")
}

func (z *zone) sorted() []RecordSet {
	out := make([]RecordSet, 0, len(z.sets))
	for _, s := range z.sets {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

func less(a, b RecordSet) bool {
	ka, kb := sortKey(a.Name), sortKey(b.Name)
	if ka != kb {
		return ka < kb
	}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	return a.SetIdentifier < b.SetIdentifier
}

func (z *zone) inZone(name string) bool {
	return name == z.name || strings.HasSuffix(name, "."+z.name)
}

func clone(s RecordSet) RecordSet {
	s.Values = append([]string(nil), s.Values...)
	if s.Alias != nil {
		a := *s.Alias
		s.Alias = &a
	}
	if s.TTL != nil {
		t := *s.TTL
		s.TTL = &t
	}
	if s.Weight != nil {
		w := *s.Weight
		s.Weight = &w
	}
	return s
}

func equalSets(a, b RecordSet) bool {
	if a.Name != b.Name || a.Type != b.Type || a.SetIdentifier != b.SetIdentifier || len(a.Values) != len(b.Values) {
		return false
	}
	if (a.TTL == nil) != (b.TTL == nil) || (a.TTL != nil && *a.TTL != *b.TTL) {
		return false
	}
	if (a.Weight == nil) != (b.Weight == nil) || (a.Weight != nil && *a.Weight != *b.Weight) {
		return false
	}
	if (a.Alias == nil) != (b.Alias == nil) || (a.Alias != nil && *a.Alias != *b.Alias) {
		return false
	}
	for i := range a.Values {
		if a.Values[i] != b.Values[i] {
			return false
		}
	}
	return true
}

// Batch limits Route53 enforces on one ChangeResourceRecordSets.
const (
	MaxRecords    = 1000
	MaxValueChars = 32000
)

// apply validates and applies changes all-or-nothing, returning every
// problem as AWS phrases it.
func (z *zone) apply(changes []Change) []string {
	var msgs []string
	recs, chars := 0, 0
	for _, c := range changes {
		n, ch := len(c.Set.Values), 0
		if c.Set.Alias != nil {
			n++
		}
		for _, v := range c.Set.Values {
			ch += len(v)
		}
		if c.Action == "UPSERT" {
			n, ch = 2*n, 2*ch
		}
		recs, chars = recs+n, chars+ch
	}
	if recs > MaxRecords {
		msgs = append(msgs, fmt.Sprintf("Number of records limit of %d exceeded.", MaxRecords))
	}
	if chars > MaxValueChars {
		msgs = append(msgs, fmt.Sprintf("Number of characters in all Value elements limit of %d exceeded.", MaxValueChars))
	}
	staged := make(map[setKey]RecordSet, len(z.sets))
	for k, v := range z.sets {
		staged[k] = v
	}
	for _, c := range changes {
		s := clone(c.Set)
		s.Name = fqdn(s.Name)
		desc := fmt.Sprintf("[name='%s', type='%s'", s.Name, s.Type)
		if s.SetIdentifier != "" {
			desc += fmt.Sprintf(", set-identifier='%s'", s.SetIdentifier)
		}
		desc += "]"
		if !z.inZone(s.Name) {
			msgs = append(msgs, fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", s.Name, z.name))
			continue
		}
		if c.Action != "DELETE" {
			if m := checkValues(s); m != "" {
				msgs = append(msgs, m)
				continue
			}
			if m := cnameConflict(staged, s); m != "" {
				msgs = append(msgs, m)
				continue
			}
		}
		cur, exists := staged[s.key()]
		switch c.Action {
		case "CREATE":
			if exists {
				msgs = append(msgs, "Tried to create resource record set "+desc+" but it already exists")
				continue
			}
			staged[s.key()] = s
		case "UPSERT":
			staged[s.key()] = s
		case "DELETE":
			switch {
			case !exists:
				msgs = append(msgs, "Tried to delete resource record set "+desc+" but it was not found")
			case !equalSets(cur, s):
				msgs = append(msgs, "Tried to delete resource record set "+desc+" but the values provided do not match the current values")
			case s.Name == z.name && (s.Type == "SOA" || s.Type == "NS"):
				msgs = append(msgs, "A HostedZone must contain exactly one SOA record and at least one NS record.")
			default:
				delete(staged, s.key())
			}
		default:
			msgs = append(msgs, fmt.Sprintf("Invalid action %q", c.Action))
		}
	}
	if len(msgs) == 0 && z.quota > 0 && len(staged) > z.quota && len(staged) > len(z.sets) {
		msgs = append(msgs, fmt.Sprintf("The hosted zone %s would hold %d resource record sets, more than its limit of %d. Delete record sets or request a higher quota.", z.name, len(staged), z.quota))
	}
	if len(msgs) > 0 {
		return msgs
	}
	z.sets = staged
	return nil
}

func checkValues(s RecordSet) string {
	if s.Alias == nil && len(s.Values) == 0 {
		return fmt.Sprintf("Invalid Resource Record: FATAL problem: resource record set %s %s has no values", s.Name, s.Type)
	}
	if s.Alias == nil && s.TTL == nil {
		return fmt.Sprintf("Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=..., Name=%s, Type=%s]", s.Name, s.Type)
	}
	for _, v := range s.Values {
		switch s.Type {
		case "A":
			if a, err := netip.ParseAddr(v); err != nil || !a.Is4() {
				return fmt.Sprintf("Invalid Resource Record: FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '%s'", v)
			}
		case "TXT":
			if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
				return fmt.Sprintf("Invalid Resource Record: FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '%s'", v)
			}
		}
	}
	return ""
}

func cnameConflict(sets map[setKey]RecordSet, s RecordSet) string {
	for k := range sets {
		if k.name != s.Name || k.typ == s.Type {
			continue
		}
		if k.typ == "CNAME" || s.Type == "CNAME" {
			return fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type %s with the same DNS name already exists in zone %s.", s.Type, s.Name, k.typ, z0(s.Name))
		}
	}
	return ""
}

func z0(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}
