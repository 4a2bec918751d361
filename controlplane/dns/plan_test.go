package dns

import (
	"fmt"
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

func TestPlanChanges(t *testing.T) {
	own := OwnershipValue("cp")
	tests := []struct {
		name      string
		desired   map[string]string
		current   []types.ResourceRecordSet
		want      []string
		conflicts int
	}{
		{name: "empty zone", desired: map[string]string{"a.mesh.local": "127.1.0.2"},
			want: []string{"CREATE A a.mesh.local 127.1.0.2", `CREATE TXT _ecsmesh-a.a.mesh.local ` + own}},
		{name: "in sync", desired: map[string]string{"a.mesh.local": "127.1.0.2"},
			current: []types.ResourceRecordSet{rrset("a.mesh.local", types.RRTypeA, 10, "127.1.0.2"), rrset("_ecsmesh-a.a.mesh.local", types.RRTypeTxt, 10, own)}},
		{name: "vip changed", desired: map[string]string{"a.mesh.local": "127.1.0.3"},
			current: []types.ResourceRecordSet{rrset("a.mesh.local", types.RRTypeA, 10, "127.1.0.2"), rrset("_ecsmesh-a.a.mesh.local", types.RRTypeTxt, 10, own)},
			want:    []string{"UPSERT A a.mesh.local 127.1.0.3"}},
		{name: "owned A lost", desired: map[string]string{"a.mesh.local": "127.1.0.2"},
			current: []types.ResourceRecordSet{rrset("_ecsmesh-a.a.mesh.local", types.RRTypeTxt, 10, own)},
			want:    []string{"CREATE A a.mesh.local 127.1.0.2"}},
		{name: "deleted service", desired: map[string]string{},
			current: []types.ResourceRecordSet{rrset("a.mesh.local", types.RRTypeA, 10, "127.1.0.2"), rrset("_ecsmesh-a.a.mesh.local", types.RRTypeTxt, 10, own)},
			want:    []string{"DELETE A a.mesh.local 127.1.0.2", "DELETE TXT _ecsmesh-a.a.mesh.local " + own}},
		{name: "foreign A kept", desired: map[string]string{"a.mesh.local": "127.1.0.2"},
			current: []types.ResourceRecordSet{rrset("a.mesh.local", types.RRTypeA, 300, "10.0.0.1")}, conflicts: 1},
		{name: "foreign CNAME kept", desired: map[string]string{"a.mesh.local": "127.1.0.2"},
			current: []types.ResourceRecordSet{rrset("a.mesh.local", types.RRTypeCname, 300, "x.example.com")}, conflicts: 1},
		{name: "other owner kept", desired: map[string]string{},
			current: []types.ResourceRecordSet{rrset("b.mesh.local", types.RRTypeA, 10, "127.1.0.2"), rrset("_ecsmesh-a.b.mesh.local", types.RRTypeTxt, 10, OwnershipValue("other"))}},
		{name: "other owner conflicts", desired: map[string]string{"b.mesh.local": "127.1.0.2"},
			current: []types.ResourceRecordSet{rrset("_ecsmesh-a.b.mesh.local", types.RRTypeTxt, 10, OwnershipValue("other"))}, conflicts: 1},
		{name: "foreign records untouched", desired: map[string]string{},
			current: []types.ResourceRecordSet{rrset("mesh.local", types.RRTypeSoa, 900, "ns. admin. 1 2 3 4 5"), rrset("db.mesh.local", types.RRTypeA, 60, "10.0.0.9"), rrset("db.mesh.local", types.RRTypeTxt, 60, `"v=spf1"`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanChanges(tt.desired, tt.current, "cp", 10)
			got := describe(p)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(p.Conflicts) != tt.conflicts {
				t.Fatalf("conflicts %v, want %d", p.Conflicts, tt.conflicts)
			}
		})
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
	p := PlanChanges(desired, nil, "cp-0123456789", 10)
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
	if total != 5000 {
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
