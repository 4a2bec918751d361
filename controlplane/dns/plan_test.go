package dns

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

func rrset(name string, typ types.RRType, ttl int64, values ...string) types.ResourceRecordSet {
	rs := types.ResourceRecordSet{Name: aws.String(name + "."), Type: typ, TTL: aws.Int64(ttl)}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

func describe(p Plan) []string {
	var out []string
	for _, u := range p.Units {
		for _, c := range u.Changes {
			rs := c.ResourceRecordSet
			out = append(out, fmt.Sprintf("%s %s %s %s", c.Action, rs.Type, NormalizeName(aws.ToString(rs.Name)), aws.ToString(rs.ResourceRecords[0].Value)))
		}
	}
	return out
}

var testRanges = []netip.Prefix{netip.MustParsePrefix("127.1.0.0/16")}

func planIn(desired map[string]string, current []types.ResourceRecordSet) PlanInput {
	return PlanInput{Desired: desired, Current: current, Owner: "cp", TTL: 10, Domain: "mesh.local", VIPRanges: testRanges}
}

func TestPlanChanges(t *testing.T) {
	own, other := OwnershipValue("cp"), OwnershipValue("other")
	claim := rrset("_ecsmesh-owner.mesh.local", types.RRTypeTxt, 10, own)
	a := func(name, v string) types.ResourceRecordSet { return rrset(name, types.RRTypeA, 10, v) }
	txt := func(name, v string) types.ResourceRecordSet { return rrset(name, types.RRTypeTxt, 10, v) }
	one := map[string]string{"a.mesh.local": "127.1.0.2"}
	tests := []struct {
		name      string
		desired   map[string]string
		current   []types.ResourceRecordSet
		want      []string
		conflicts int
		refused   []string // refused domains
	}{
		{name: "empty zone: one claim, one A", desired: one,
			want: []string{"CREATE TXT _ecsmesh-owner.mesh.local " + own, "CREATE A a.mesh.local 127.1.0.2"}},
		{name: "in sync", desired: one, current: []types.ResourceRecordSet{claim, a("a.mesh.local", "127.1.0.2")}},
		{name: "vip changed", desired: map[string]string{"a.mesh.local": "127.1.0.3"},
			current: []types.ResourceRecordSet{claim, a("a.mesh.local", "127.1.0.2")},
			want:    []string{"UPSERT A a.mesh.local 127.1.0.3"}},
		{name: "deleted service, claim stays", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, a("a.mesh.local", "127.1.0.2")},
			want:    []string{"DELETE A a.mesh.local 127.1.0.2"}},
		{name: "A outside the VIP ranges is foreign", desired: one,
			current:   []types.ResourceRecordSet{claim, rrset("a.mesh.local", types.RRTypeA, 300, "10.0.0.1"), rrset("b.mesh.local", types.RRTypeA, 300, "10.0.0.2")},
			conflicts: 1},
		{name: "A with one value outside the ranges is foreign", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, rrset("b.mesh.local", types.RRTypeA, 10, "127.1.0.9", "10.0.0.2")}},
		{name: "weighted A in the ranges is foreign", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, func() types.ResourceRecordSet {
				rs := a("b.mesh.local", "127.1.0.9")
				rs.SetIdentifier = aws.String("blue")
				return rs
			}()}},
		{name: "foreign CNAME kept", desired: one,
			current: []types.ResourceRecordSet{rrset("a.mesh.local", types.RRTypeCname, 300, "x.example.com")},
			want:    []string{"CREATE TXT _ecsmesh-owner.mesh.local " + own}, conflicts: 1},
		{name: "VIP A outside every claimed domain kept", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, a("x.other.local", "127.1.0.9")}},
		{name: "another owner's legacy mark keeps its name", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, a("b.mesh.local", "127.1.0.2"), txt("_ecsmesh-a.b.mesh.local", other)}},
		{name: "another owner's legacy mark conflicts", desired: map[string]string{"b.mesh.local": "127.1.0.2"},
			current: []types.ResourceRecordSet{claim, txt("_ecsmesh-a.b.mesh.local", other)}, conflicts: 1},
		{name: "domain claimed by another owner: nothing touched", desired: one,
			current: []types.ResourceRecordSet{txt("_ecsmesh-owner.mesh.local", other), a("a.mesh.local", "127.1.0.7"), a("z.mesh.local", "127.1.0.8"),
				txt("_ecsmesh-a.z.mesh.local", own)},
			conflicts: 1, refused: []string{"mesh.local"}},
		{name: "subdomain claimed by another owner refuses the domain", desired: one,
			current:   []types.ResourceRecordSet{claim, txt("_ecsmesh-owner.team.mesh.local", other), a("z.mesh.local", "127.1.0.8")},
			conflicts: 1, refused: []string{"mesh.local"}},
		{name: "parent claimed by another owner refuses the domain", desired: one,
			current:   []types.ResourceRecordSet{txt("_ecsmesh-owner.local", other)},
			conflicts: 1, refused: []string{"mesh.local"}},
		{name: "unreadable TXT at the claim name refuses", desired: one,
			current:   []types.ResourceRecordSet{txt("_ecsmesh-owner.mesh.local", `"hello"`)},
			conflicts: 1, refused: []string{"mesh.local"}},
		{name: "sibling domain claimed by another owner is no conflict", desired: one,
			current: []types.ResourceRecordSet{claim, a("a.mesh.local", "127.1.0.2"), txt("_ecsmesh-owner.other.local", other)}},
		{name: "migration: claim first, our legacy marks last, A untouched", desired: one,
			current: []types.ResourceRecordSet{a("a.mesh.local", "127.1.0.2"), txt("_ecsmesh-a.a.mesh.local", own)},
			want:    []string{"CREATE TXT _ecsmesh-owner.mesh.local " + own, "DELETE TXT _ecsmesh-a.a.mesh.local " + own}},
		{name: "migration: legacy name outside the domains is still ours", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, a("x.other.local", "127.1.0.9"), txt("_ecsmesh-a.x.other.local", own)},
			want:    []string{"DELETE A x.other.local 127.1.0.9", "DELETE TXT _ecsmesh-a.x.other.local " + own}},
		{name: "generator name outside the domain claims its parent", desired: map[string]string{"r.svc.other.local": "127.1.0.4", "s.svc.other.local": "127.1.0.5", "r.svc.mesh.local": "127.1.0.4"},
			current: []types.ResourceRecordSet{claim},
			want: []string{"CREATE TXT _ecsmesh-owner.svc.other.local " + own,
				"CREATE A r.svc.mesh.local 127.1.0.4", "CREATE A r.svc.other.local 127.1.0.4", "CREATE A s.svc.other.local 127.1.0.5"}},
		{name: "claim no longer needed goes after its names", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, txt("_ecsmesh-owner.svc.other.local", own), a("r.svc.other.local", "127.1.0.4")},
			want:    []string{"DELETE A r.svc.other.local 127.1.0.4", "DELETE TXT _ecsmesh-owner.svc.other.local " + own}},
		{name: "foreign records untouched", desired: map[string]string{},
			current: []types.ResourceRecordSet{claim, rrset("mesh.local", types.RRTypeSoa, 900, "ns. admin. 1 2 3 4 5"), rrset("db.mesh.local", types.RRTypeA, 60, "10.0.0.9"), rrset("db.mesh.local", types.RRTypeTxt, 60, `"v=spf1"`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanChanges(planIn(tt.desired, tt.current))
			got := describe(p)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(p.Conflicts) != tt.conflicts {
				t.Fatalf("conflicts %v, want %d", p.Conflicts, tt.conflicts)
			}
			var refused []string
			for _, oc := range p.OwnerConflicts {
				refused = append(refused, oc.Domain)
			}
			if strings.Join(refused, ",") != strings.Join(tt.refused, ",") {
				t.Fatalf("refused %v, want %v", p.OwnerConflicts, tt.refused)
			}
		})
	}
}

func TestPlanFootprint(t *testing.T) {
	desired := map[string]string{}
	for i := range 1000 {
		desired[fmt.Sprintf("svc-%05d.mesh.local", i)] = fmt.Sprintf("127.1.%d.%d", i/250, i%250+2)
	}
	soa := rrset("mesh.local", types.RRTypeSoa, 900, "ns. admin. 1 2 3 4 5")
	p := PlanChanges(planIn(desired, []types.ResourceRecordSet{soa}))
	want := Footprint{Zone: 1002, A: 1000, Claims: 1}
	if p.After != want || p.Before != (Footprint{Zone: 1}) {
		t.Fatalf("footprint before %+v after %+v, want after %+v", p.Before, p.After, want)
	}
	if rps := float64(p.After.Owned()) / 1000; rps > 1.01 {
		t.Fatalf("%.3f records per service", rps)
	}
}

func TestParseOwnership(t *testing.T) {
	tests := []struct {
		in    string
		owner string
		ok    bool
	}{
		{OwnershipValue("cp-1"), "cp-1", true},
		{`"heritage=external-dns,owner=x"`, "", false},
		{`heritage=ecsmesh,owner=x`, "", false},
		{`"heritage=ecsmesh"`, "", false},
		{`"owner=x,heritage=ecsmesh,resource=a/b"`, "x", true},
	}
	for _, tt := range tests {
		owner, ok := ParseOwnership(tt.in)
		if owner != tt.owner || ok != tt.ok {
			t.Errorf("ParseOwnership(%q) = %q, %v", tt.in, owner, ok)
		}
	}
}

func FuzzParseOwnership(f *testing.F) {
	f.Add(OwnershipValue("cp"))
	f.Add(`"a=b,,=,heritage="`)
	f.Fuzz(func(t *testing.T, s string) {
		if owner, ok := ParseOwnership(s); ok && owner == "" {
			t.Fatal("ok with empty owner")
		}
	})
}

func TestBatchesWithinLimits(t *testing.T) {
	var desired = map[string]string{}
	for i := range 2500 {
		desired[fmt.Sprintf("svc-%05d.mesh.local", i)] = fmt.Sprintf("127.1.%d.%d", i/250, i%250+2)
	}
	in := planIn(desired, nil)
	in.Owner = "cp-0123456789"
	p := PlanChanges(in)
	batches, err := Batches(p.Units, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != LowerBound(len(desired)) {
		t.Fatalf("%d batches for %d names, lower bound %d", len(batches), len(desired), LowerBound(len(desired)))
	}
	total := 0
	for i, b := range batches {
		recs, chars := 0, 0
		for _, c := range b {
			r, ch := Cost(c)
			recs, chars = recs+r, chars+ch
		}
		if recs > MaxBatchRecords || chars > MaxBatchValueChars {
			t.Fatalf("batch %d: %d records, %d characters", i, recs, chars)
		}
		total += len(b)
	}
	if total != 2501 {
		t.Fatalf("%d changes", total)
	}
	// UPSERT counts twice.
	up := []Unit{{Name: "x", Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{ResourceRecords: []types.ResourceRecord{{Value: aws.String("127.0.0.2")}}}}}}}
	small := Limits{Records: 3, ValueChars: 100}
	bs, err := Batches([]Unit{up[0], up[0]}, small)
	if err != nil || len(bs) != 2 {
		t.Fatalf("UPSERT must count twice: %d batches, %v", len(bs), err)
	}
	if _, err := Batches(up, Limits{Records: 1, ValueChars: 100}); err == nil {
		t.Fatal("an oversized unit must be an error")
	}
}

// FuzzPlanChangesTouchesOnlyOurs feeds hostile zone contents to the planner:
// whatever the zone holds, every change is a create of a desired A record
// or of our claim, or a change of an A record that is ours (VIP values, or
// marked by our legacy record), or a delete of our own claim or legacy
// record; nothing under a refused domain changes.
func FuzzPlanChangesTouchesOnlyOurs(f *testing.F) {
	f.Add("a.mesh.local", "A", "127.1.0.2", "_ecsmesh-owner.mesh.local", "TXT", `"heritage=ecsmesh,owner=x"`)
	f.Add("_ecsmesh-a.b.mesh.local", "TXT", `"heritage=ecsmesh,owner=cp"`, "b.mesh.local", "A", "10.0.0.1")
	f.Add("_ecsmesh-owner.team.mesh.local", "TXT", `"heritage=ecsmesh,owner=cp"`, "x.team.mesh.local", "CNAME", "y.example")
	f.Fuzz(func(t *testing.T, n1, t1, v1, n2, t2, v2 string) {
		current := []types.ResourceRecordSet{
			rrset(n1, types.RRType(t1), 10, v1), rrset(n2, types.RRType(t2), 10, v2),
			rrset("c.mesh.local", types.RRTypeA, 10, "127.1.0.3"),
		}
		desired := map[string]string{"a.mesh.local": "127.1.0.2", "b.mesh.local": "127.1.0.4", "r.svc.other.local": "127.1.0.5"}
		in := planIn(desired, current)
		p := PlanChanges(in)
		idx := map[string]types.ResourceRecordSet{}
		for _, rs := range current {
			idx[NormalizeName(aws.ToString(rs.Name))+" "+string(rs.Type)] = rs
		}
		ours := OwnershipValue("cp")
		for _, u := range p.Units {
			for _, c := range u.Changes {
				rs := c.ResourceRecordSet
				name := NormalizeName(aws.ToString(rs.Name))
				for _, oc := range p.OwnerConflicts {
					if InZone(name, oc.Domain) || InZone(strings.TrimPrefix(strings.TrimPrefix(name, ClaimPrefix), LegacyPrefix), oc.Domain) {
						t.Fatalf("%s %s under refused domain %s", c.Action, name, oc.Domain)
					}
				}
				switch {
				case rs.Type == types.RRTypeTxt:
					if aws.ToString(rs.ResourceRecords[0].Value) != ours || !(strings.HasPrefix(name, ClaimPrefix) || strings.HasPrefix(name, LegacyPrefix) && c.Action == types.ChangeActionDelete) {
						t.Fatalf("%s TXT %s %v", c.Action, name, rs.ResourceRecords)
					}
				case rs.Type != types.RRTypeA:
					t.Fatalf("%s %s %s", c.Action, rs.Type, name)
				case c.Action == types.ChangeActionCreate:
					if _, ok := desired[name]; !ok {
						t.Fatalf("CREATE A %s not desired", name)
					}
				default: // DELETE or UPSERT of an existing A record
					cur, ok := idx[name+" A"]
					if !ok {
						t.Fatalf("%s A %s: no such record", c.Action, name)
					}
					legacy, marked := idx[LegacyName(name)+" TXT"]
					mine := marked && len(legacy.ResourceRecords) == 1 && aws.ToString(legacy.ResourceRecords[0].Value) == ours
					if !mine && (marked || !plainVIP(&cur, testRanges)) {
						t.Fatalf("%s A %s: not ours (%+v)", c.Action, name, cur)
					}
				}
			}
		}
	})
}
