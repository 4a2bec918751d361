package dns

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// Heritage is the heritage value of ecsmesh's ownership records.
const Heritage = "ecsmesh"

// ClaimPrefix is prepended (as a label) to a domain to name the TXT record
// that claims the domain for one ecsmesh deployment: the claim of
// mesh.local is the TXT record _ecsmesh-owner.mesh.local. One claim per
// domain replaces a TXT record per name; the A records under a claimed
// domain whose values lie in the mesh's VIP ranges are the claimant's.
const ClaimPrefix = "_ecsmesh-owner."

// LegacyPrefix names the per-record ownership TXT records of earlier
// versions: _ecsmesh-a.<name> marked the A record <name>. The writer
// deletes its own (after writing its claim) and never touches another
// owner's; a name marked by another owner is never inferred to be ours.
const LegacyPrefix = "_ecsmesh-a."

// ClaimName returns the name of the TXT record that claims domain.
func ClaimName(domain string) string { return ClaimPrefix + NormalizeName(domain) }

// LegacyName returns the name of a legacy per-record ownership TXT record.
func LegacyName(name string) string { return LegacyPrefix + NormalizeName(name) }

// OwnershipValue returns the TXT value (quoted, as Route53 stores it) of a
// claim (and of the legacy records) by owner:
// "heritage=ecsmesh,owner=<owner>".
func OwnershipValue(owner string) string {
	return `"heritage=` + Heritage + `,owner=` + owner + `"`
}

// ParseOwnership reads an ownership TXT value and returns its owner, or
// false when it is not an ecsmesh ownership value.
func ParseOwnership(value string) (owner string, ok bool) {
	v := strings.TrimSpace(value)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	heritage := false
	for _, kv := range strings.Split(v[1:len(v)-1], ",") {
		k, val, found := strings.Cut(kv, "=")
		if !found {
			continue
		}
		switch k {
		case "heritage":
			heritage = val == Heritage
		case "owner":
			owner = val
		}
	}
	if !heritage || owner == "" {
		return "", false
	}
	return owner, true
}

// Conflict is a desired hostname the planner leaves alone because the zone
// holds a record ecsmesh does not own there, or its domain is claimed by
// another deployment.
type Conflict struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// OwnerConflict is a domain this deployment needs (or holds) that overlaps
// a claim by another owner: the writer touches no record under it.
type OwnerConflict struct {
	// Domain is the domain this deployment needs.
	Domain string `json:"domain"`
	// ClaimedDomain is the domain of the other claim (Domain, a parent or
	// a subdomain of it) and Owner its owner ("" when the TXT record is
	// not a readable ecsmesh claim).
	ClaimedDomain string `json:"claimedDomain"`
	Owner         string `json:"owner"`
}

// Unit is changes that go into one request together (a name's records, a
// claim). A unit is never split across requests.
type Unit struct {
	Name    string
	Changes []types.Change
}

// Footprint counts record sets of the zone as they are after the plan is
// applied.
type Footprint struct {
	// Zone is every record set of the zone (SOA and NS included).
	Zone int `json:"zone"`
	// A, Claims and Legacy are ecsmesh's: A records, domain claims and
	// legacy per-record TXT records still to be deleted.
	A      int `json:"a"`
	Claims int `json:"claims"`
	Legacy int `json:"legacy"`
}

// Owned is the number of record sets ecsmesh keeps in the zone.
func (f Footprint) Owned() int { return f.A + f.Claims + f.Legacy }

// Plan is what it takes to make the zone match the desired records.
type Plan struct {
	Units          []Unit
	Conflicts      []Conflict
	OwnerConflicts []OwnerConflict
	// Before and After are the zone's footprint as listed and once every
	// unit is applied.
	Before, After Footprint
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool { return len(p.Units) == 0 }

// Changes counts the changes of every unit.
func (p Plan) Changes() int {
	n := 0
	for _, u := range p.Units {
		n += len(u.Changes)
	}
	return n
}

// NormalizeName lower-cases a Route53 name and drops its trailing dot
// (resource.NormalizeHostname).
func NormalizeName(name string) string { return resource.NormalizeHostname(name) }

// PlanInput is what PlanChanges compares.
type PlanInput struct {
	// Desired maps hostname → VIP.
	Desired map[string]string
	// Current is the zone's record sets.
	Current []types.ResourceRecordSet
	// Owner is this deployment's owner ID, TTL the records' TTL.
	Owner string
	TTL   int64
	// Domain is KUMA_DNS_SERVER_DOMAIN: always claimed (when not empty).
	Domain string
	// Zone is the hosted zone's name: claims never go above it.
	Zone string
	// VIPRanges are the mesh's VIP ranges: an A record under a claimed
	// domain is ours only when every value lies in one of them.
	VIPRanges []netip.Prefix
}

type rrKey struct{ name, typ string }

// PlanChanges compares the desired A records with the zone and returns the
// changes. Ownership is per domain: a TXT claim _ecsmesh-owner.<domain>
// naming the owner covers every plain A record under the domain whose
// values are all VIPs. The claimed domains are Domain plus, for a desired
// name outside every claimed domain (a HostnameGenerator's), the name's
// parent. A domain that overlaps (equals, contains or lies inside) another
// owner's claim is refused: nothing under it is written or deleted. A name
// with a legacy ownership record of another owner is never ours. Claims go
// first, legacy records of ours and claims no longer needed last, so a name
// is never unowned between requests. Nothing else is ever touched. It is a
// pure function.
func PlanChanges(in PlanInput) Plan {
	idx := make(map[rrKey]*types.ResourceRecordSet, len(in.Current))
	for i := range in.Current {
		rs := &in.Current[i]
		idx[rrKey{NormalizeName(aws.ToString(rs.Name)), string(rs.Type)}] = rs
	}
	ours := OwnershipValue(in.Owner)
	zone := NormalizeName(in.Zone)
	cl := readClaims(idx, ours)
	needed := neededDomains(NormalizeName(in.Domain), zone, in.Desired)
	var p Plan

	// Domains: needed or held, refused when they overlap a foreign claim.
	claimed := map[string]bool{}
	for _, d := range needed {
		claimed[d] = true
	}
	for d := range cl.held {
		claimed[d] = true
	}
	refused := map[string]OwnerConflict{}
	for _, d := range sortedKeys(claimed) {
		for _, f := range sortedKeys(cl.foreign) {
			if InZone(d, f) || InZone(f, d) {
				oc := OwnerConflict{Domain: d, ClaimedDomain: f, Owner: cl.foreign[f]}
				refused[d] = oc
				p.OwnerConflicts = append(p.OwnerConflicts, oc)
				break
			}
		}
	}
	// cover returns the closest claimed domain holding name.
	cover := func(name string) (string, bool) {
		for d := name; d != ""; {
			if claimed[d] {
				return d, true
			}
			_, d, _ = strings.Cut(d, ".")
		}
		return "", false
	}
	isRefused := func(name string) (OwnerConflict, bool) {
		d, ok := cover(name)
		if !ok {
			return OwnerConflict{}, false
		}
		oc, r := refused[d]
		return oc, r
	}

	// Which A records are ours.
	owned := map[string]*types.ResourceRecordSet{}
	for k, rs := range idx {
		if k.typ != string(types.RRTypeA) {
			continue
		}
		if _, r := isRefused(k.name); r {
			continue
		}
		legacy := idx[rrKey{LegacyName(k.name), string(types.RRTypeTxt)}]
		switch {
		case legacy != nil && isValue(legacy, ours):
			owned[k.name] = rs // ours by the old mark, whatever its form
		case legacy != nil:
			// another owner's mark: never ours
		case plainVIP(rs, in.VIPRanges):
			if _, ok := cover(k.name); ok {
				owned[k.name] = rs
			}
		}
	}

	// Claims first.
	for _, d := range needed {
		if _, r := refused[d]; r || cl.held[d] != nil {
			continue
		}
		p.Units = append(p.Units, Unit{Name: ClaimName(d), Changes: []types.Change{
			change(types.ChangeActionCreate, txtRecord(ClaimName(d), ours, in.TTL))}})
	}
	// Then the names.
	names := make([]string, 0, len(in.Desired)+len(owned))
	for n := range in.Desired {
		names = append(names, n)
	}
	for n := range owned {
		if _, ok := in.Desired[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		vip, want := in.Desired[name]
		a, mine := owned[name], owned[name] != nil
		if a == nil {
			a = idx[rrKey{name, string(types.RRTypeA)}]
		}
		var ch []types.Change
		switch {
		case want && !mine:
			if oc, r := isRefused(name); r {
				p.Conflicts = append(p.Conflicts, Conflict{name, fmt.Sprintf("domain %s is claimed by owner %q (%s)", oc.Domain, oc.Owner, ClaimName(oc.ClaimedDomain))})
				continue
			}
			if legacy := idx[rrKey{LegacyName(name), string(types.RRTypeTxt)}]; legacy != nil {
				p.Conflicts = append(p.Conflicts, Conflict{name, fmt.Sprintf("ownership record %s belongs to someone else", LegacyName(name))})
				continue
			}
			if a != nil || idx[rrKey{name, string(types.RRTypeCname)}] != nil {
				p.Conflicts = append(p.Conflicts, Conflict{name, "the zone holds a record at this name that ecsmesh does not own (an A record outside the VIP ranges, or a CNAME)"})
				continue
			}
			ch = append(ch, change(types.ChangeActionCreate, aRecord(name, vip, in.TTL)))
		case want:
			switch {
			case matches(a, vip, in.TTL):
			case a.SetIdentifier != nil || a.AliasTarget != nil:
				ch = append(ch, change(types.ChangeActionDelete, *a), change(types.ChangeActionCreate, aRecord(name, vip, in.TTL)))
			default:
				ch = append(ch, change(types.ChangeActionUpsert, aRecord(name, vip, in.TTL)))
			}
		default: // ours, no longer desired
			ch = append(ch, change(types.ChangeActionDelete, *a))
		}
		if len(ch) > 0 {
			p.Units = append(p.Units, Unit{Name: name, Changes: ch})
		}
	}
	// Migration: our legacy marks go once the claims are in.
	for _, n := range sortedKeys(cl.legacy) {
		if _, r := isRefused(n); r {
			continue
		}
		p.Units = append(p.Units, Unit{Name: LegacyName(n), Changes: []types.Change{change(types.ChangeActionDelete, *cl.legacy[n])}})
	}
	// Claims no longer needed (a generator's domain): last.
	isNeeded := map[string]bool{}
	for _, d := range needed {
		isNeeded[d] = true
	}
	for _, d := range sortedKeys(cl.held) {
		if _, r := refused[d]; r || isNeeded[d] {
			continue
		}
		p.Units = append(p.Units, Unit{Name: ClaimName(d), Changes: []types.Change{change(types.ChangeActionDelete, *cl.held[d])}})
	}
	p.Before = Footprint{Zone: len(in.Current), A: len(owned), Claims: len(cl.held), Legacy: len(cl.legacy)}
	p.After = footprintAfter(p)
	return p
}

// footprintAfter counts what the zone holds once p's units are applied.
func footprintAfter(p Plan) Footprint {
	f := p.Before
	for _, u := range p.Units {
		for _, c := range u.Changes {
			d := 0
			switch c.Action {
			case types.ChangeActionCreate:
				d = 1
			case types.ChangeActionDelete:
				d = -1
			}
			f.Zone += d
			name := NormalizeName(aws.ToString(c.ResourceRecordSet.Name))
			switch {
			case c.ResourceRecordSet.Type == types.RRTypeA:
				f.A += d
			case strings.HasPrefix(name, ClaimPrefix):
				f.Claims += d
			case strings.HasPrefix(name, LegacyPrefix):
				f.Legacy += d
			}
		}
	}
	return f
}

// claims is what the zone says about ownership.
type claims struct {
	held    map[string]*types.ResourceRecordSet // domain → our claim
	foreign map[string]string                   // domain → other owner ("" when unreadable)
	legacy  map[string]*types.ResourceRecordSet // name → our legacy mark
}

func readClaims(idx map[rrKey]*types.ResourceRecordSet, ours string) claims {
	c := claims{held: map[string]*types.ResourceRecordSet{}, foreign: map[string]string{}, legacy: map[string]*types.ResourceRecordSet{}}
	for k, rs := range idx {
		if k.typ != string(types.RRTypeTxt) {
			continue
		}
		switch {
		case strings.HasPrefix(k.name, ClaimPrefix):
			d := strings.TrimPrefix(k.name, ClaimPrefix)
			if isValue(rs, ours) {
				c.held[d] = rs
				continue
			}
			owner := ""
			if len(rs.ResourceRecords) == 1 {
				owner, _ = ParseOwnership(aws.ToString(rs.ResourceRecords[0].Value))
			}
			c.foreign[d] = owner
		case strings.HasPrefix(k.name, LegacyPrefix) && isValue(rs, ours):
			c.legacy[strings.TrimPrefix(k.name, LegacyPrefix)] = rs
		}
	}
	return c
}

// neededDomains returns the domains to claim: domain, then the parent of
// every desired name outside the domains so far (shallowest first, so a
// parent absorbs its subdomains), never above zone.
func neededDomains(domain, zone string, desired map[string]string) []string {
	var out []string
	if domain != "" {
		out = append(out, domain)
	}
	names := make([]string, 0, len(desired))
	for n := range desired {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "."), strings.Count(names[j], ".")
		if di != dj {
			return di < dj
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		covered := false
		for _, d := range out {
			if InZone(n, d) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		d := n
		if _, parent, ok := strings.Cut(n, "."); ok && parent != "" && (zone == "" || InZone(parent, zone)) {
			d = parent
		}
		out = append(out, d)
	}
	return out
}

// plainVIP reports whether rs is a simple A record whose values are all in
// ranges.
func plainVIP(rs *types.ResourceRecordSet, ranges []netip.Prefix) bool {
	if rs.SetIdentifier != nil || rs.AliasTarget != nil || len(rs.ResourceRecords) == 0 {
		return false
	}
	for _, r := range rs.ResourceRecords {
		a, err := netip.ParseAddr(aws.ToString(r.Value))
		if err != nil || !inRanges(a, ranges) {
			return false
		}
	}
	return true
}

func inRanges(a netip.Addr, ranges []netip.Prefix) bool {
	for _, p := range ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// isValue reports whether rs is a simple record with the single value v.
func isValue(rs *types.ResourceRecordSet, v string) bool {
	return rs.SetIdentifier == nil && len(rs.ResourceRecords) == 1 && aws.ToString(rs.ResourceRecords[0].Value) == v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func matches(rs *types.ResourceRecordSet, vip string, ttl int64) bool {
	return rs.SetIdentifier == nil && rs.AliasTarget == nil && aws.ToInt64(rs.TTL) == ttl &&
		len(rs.ResourceRecords) == 1 && aws.ToString(rs.ResourceRecords[0].Value) == vip
}

func change(action types.ChangeAction, rs types.ResourceRecordSet) types.Change {
	rs2 := rs
	return types.Change{Action: action, ResourceRecordSet: &rs2}
}

func aRecord(name, vip string, ttl int64) types.ResourceRecordSet {
	return types.ResourceRecordSet{Name: aws.String(name), Type: types.RRTypeA, TTL: aws.Int64(ttl),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String(vip)}}}
}

func txtRecord(name, value string, ttl int64) types.ResourceRecordSet {
	return types.ResourceRecordSet{Name: aws.String(name), Type: types.RRTypeTxt, TTL: aws.Int64(ttl),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String(value)}}}
}
