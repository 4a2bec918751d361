package dns

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// Heritage is the heritage value of ecsmesh's ownership records.
const Heritage = "ecsmesh"

// OwnershipPrefix is prepended (as a label) to a hostname to name the TXT
// record that says ecsmesh owns it: the A record redis.mesh.local is owned
// through the TXT record _ecsmesh-a.redis.mesh.local. A separate name keeps
// ownership off names that may carry foreign TXT records (SPF, site
// verification).
const OwnershipPrefix = "_ecsmesh-a."

// OwnershipName returns the name of the TXT record that marks name owned.
func OwnershipName(name string) string { return OwnershipPrefix + name }

// OwnershipValue returns the TXT value (quoted, as Route53 stores it) that
// marks a record owned by owner: "heritage=ecsmesh,owner=<owner>". It is
// kept short because every character counts against the 32,000 characters
// a change request may carry.
func OwnershipValue(owner string) string {
	return `"heritage=` + Heritage + `,owner=` + owner + `"`
}

// ParseOwnership reads an ownership TXT value and returns its owner, or
// false when it is not an ecsmesh ownership record.
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
// holds a record ecsmesh does not own there.
type Conflict struct {
	Name   string
	Reason string
}

// Unit is the changes for one hostname: its A record and its ownership
// record. A unit is never split across requests, so a name is never
// written without its ownership mark.
type Unit struct {
	Name    string
	Changes []types.Change
}

// Plan is what it takes to make the zone match the desired records.
type Plan struct {
	Units     []Unit
	Conflicts []Conflict
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

type rrKey struct{ name, typ string }

// PlanChanges compares desired (hostname → VIP) with the zone's current
// record sets and returns the changes, external-dns style: a name is
// written only when it is free or owned (an ownership TXT record with
// heritage=ecsmesh and owner), owned names no longer desired are deleted
// with their ownership record, and nothing else is ever touched. It is a
// pure function.
func PlanChanges(desired map[string]string, current []types.ResourceRecordSet, owner string, ttl int64) Plan {
	idx := make(map[rrKey]*types.ResourceRecordSet, len(current))
	for i := range current {
		rs := &current[i]
		idx[rrKey{NormalizeName(aws.ToString(rs.Name)), string(rs.Type)}] = rs
	}
	ours := OwnershipValue(owner)
	owned := map[string]*types.ResourceRecordSet{}
	for k, rs := range idx {
		if k.typ != string(types.RRTypeTxt) || !strings.HasPrefix(k.name, OwnershipPrefix) {
			continue
		}
		if len(rs.ResourceRecords) == 1 && aws.ToString(rs.ResourceRecords[0].Value) == ours && rs.SetIdentifier == nil {
			owned[strings.TrimPrefix(k.name, OwnershipPrefix)] = rs
		}
	}
	names := make([]string, 0, len(desired)+len(owned))
	for n := range desired {
		names = append(names, n)
	}
	for n := range owned {
		if _, ok := desired[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)

	var p Plan
	for _, name := range names {
		vip, want := desired[name]
		txt := owned[name]
		a := idx[rrKey{name, string(types.RRTypeA)}]
		var ch []types.Change
		switch {
		case want && txt == nil:
			if other := idx[rrKey{OwnershipName(name), string(types.RRTypeTxt)}]; other != nil {
				p.Conflicts = append(p.Conflicts, Conflict{name, fmt.Sprintf("ownership record %s belongs to someone else", OwnershipName(name))})
				continue
			}
			if a != nil || idx[rrKey{name, string(types.RRTypeCname)}] != nil {
				p.Conflicts = append(p.Conflicts, Conflict{name, "the zone holds a record at this name that ecsmesh does not own"})
				continue
			}
			ch = append(ch, change(types.ChangeActionCreate, aRecord(name, vip, ttl)),
				change(types.ChangeActionCreate, txtRecord(name, ours, ttl)))
		case want:
			switch {
			case a == nil:
				ch = append(ch, change(types.ChangeActionCreate, aRecord(name, vip, ttl)))
			case matches(a, vip, ttl):
			case a.SetIdentifier != nil || a.AliasTarget != nil:
				ch = append(ch, change(types.ChangeActionDelete, *a), change(types.ChangeActionCreate, aRecord(name, vip, ttl)))
			default:
				ch = append(ch, change(types.ChangeActionUpsert, aRecord(name, vip, ttl)))
			}
		default: // owned, no longer desired
			if a != nil {
				ch = append(ch, change(types.ChangeActionDelete, *a))
			}
			ch = append(ch, change(types.ChangeActionDelete, *txt))
		}
		if len(ch) > 0 {
			p.Units = append(p.Units, Unit{Name: name, Changes: ch})
		}
	}
	return p
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
	return types.ResourceRecordSet{Name: aws.String(OwnershipName(name)), Type: types.RRTypeTxt, TTL: aws.Int64(ttl),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String(value)}}}
}
