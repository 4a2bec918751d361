package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

func dataplane(name string, labels map[string]string, inbounds ...map[string]string) *resource.Dataplane {
	dp := &resource.Dataplane{Meta: resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: name, Labels: labels}}
	for i, tags := range inbounds {
		dp.Networking.Inbound = append(dp.Networking.Inbound, resource.Inbound{Port: 15000 + i, Tags: tags})
	}
	return dp
}

func timeout(name string, top *resource.PolicyTargetRef, idle time.Duration) *resource.MeshTimeout {
	d := resource.Duration{Duration: idle}
	return &resource.MeshTimeout{
		Meta: resource.Meta{Type: resource.KindMeshTimeout, Mesh: "default", Name: name},
		Spec: resource.MeshTimeoutSpec{TargetRef: top, To: []resource.PolicyItem[resource.MeshTimeoutConf]{
			{TargetRef: resource.PolicyTargetRef{Kind: resource.TargetMesh}, Default: resource.MeshTimeoutConf{IdleTimeout: &d}},
		}},
	}
}

func ref(kind, name string, tags, labels map[string]string) *resource.PolicyTargetRef {
	return &resource.PolicyTargetRef{Kind: kind, Name: name, Tags: tags, Labels: labels}
}

func TestSortOrder(t *testing.T) {
	ps := []*resource.MeshTimeout{
		timeout("dp-name", ref(resource.TargetDataplane, "web-1", nil, nil), 0),
		timeout("dp-labels", ref(resource.TargetDataplane, "", nil, map[string]string{"app": "web"}), 0),
		timeout("dp-all", ref(resource.TargetDataplane, "", nil, nil), 0),
		timeout("svc-subset", ref(resource.TargetMeshServiceSubset, "web", map[string]string{"version": "v1"}, nil), 0),
		timeout("svc", ref(resource.TargetMeshService, "web", nil, nil), 0),
		timeout("subset", ref(resource.TargetMeshSubset, "", map[string]string{"version": "v1"}, nil), 0),
		timeout("b-mesh", nil, 0),
		timeout("a-mesh", ref(resource.TargetMesh, "", nil, nil), 0),
		timeout("c-mesh", nil, 0),
	}
	Sort(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.Name)
	}
	want := "c-mesh b-mesh a-mesh subset svc svc-subset dp-all dp-labels dp-name"
	if strings.Join(got, " ") != want {
		t.Errorf("order %s, want %s (least precedence first)", strings.Join(got, " "), want)
	}
}

func TestSelects(t *testing.T) {
	web1 := dataplane("web-1", map[string]string{"app": "web"},
		map[string]string{resource.TagService: "web", "version": "v1"},
		map[string]string{resource.TagService: "web-admin"})
	tests := []struct {
		ref      *resource.PolicyTargetRef
		dp       bool
		inbounds [2]bool
	}{
		{ref(resource.TargetMesh, "", nil, nil), true, [2]bool{true, true}},
		{ref(resource.TargetMeshSubset, "", map[string]string{"version": "v1"}, nil), true, [2]bool{true, false}},
		{ref(resource.TargetMeshSubset, "", map[string]string{"version": "v2"}, nil), false, [2]bool{false, false}},
		{ref(resource.TargetMeshService, "web-admin", nil, nil), true, [2]bool{false, true}},
		{ref(resource.TargetMeshServiceSubset, "web", map[string]string{"version": "v1"}, nil), true, [2]bool{true, false}},
		{ref(resource.TargetMeshServiceSubset, "web-admin", map[string]string{"version": "v1"}, nil), false, [2]bool{false, false}},
		{ref(resource.TargetDataplane, "", nil, nil), true, [2]bool{true, true}},
		{ref(resource.TargetDataplane, "web-1", nil, nil), true, [2]bool{true, true}},
		{ref(resource.TargetDataplane, "web-2", nil, nil), false, [2]bool{false, false}},
		{ref(resource.TargetDataplane, "", nil, map[string]string{"app": "web"}), true, [2]bool{true, true}},
		{ref(resource.TargetDataplane, "", nil, map[string]string{"app": "api"}), false, [2]bool{false, false}},
	}
	for _, tt := range tests {
		if got := Selects(*tt.ref, web1); got != tt.dp {
			t.Errorf("Selects(%+v) = %v, want %v", *tt.ref, got, tt.dp)
		}
		for i := range web1.Networking.Inbound {
			if got := SelectsInbound(*tt.ref, web1, web1.Networking.Inbound[i].Tags); got != tt.inbounds[i] {
				t.Errorf("SelectsInbound(%+v, inbound %d) = %v, want %v", *tt.ref, i, got, tt.inbounds[i])
			}
		}
	}
}

// TestOutboundSkipsUnselected checks that only selecting policies of dp's
// mesh contribute, in precedence order.
func TestOutboundSkipsUnselected(t *testing.T) {
	dp := dataplane("web-1", nil, map[string]string{resource.TagService: "web"})
	other := timeout("other-mesh", nil, time.Hour)
	other.Mesh = "other"
	ps := []*resource.MeshTimeout{
		timeout("dp", ref(resource.TargetDataplane, "web-1", nil, nil), 3*time.Second),
		timeout("not-me", ref(resource.TargetMeshService, "api", nil, nil), 2*time.Second),
		timeout("mesh", nil, time.Second),
		other,
	}
	r := Outbound(ps, dp)
	if got := originsOf(r); got != "mesh/to[0] dp/to[0]" {
		t.Errorf("entries %s", got)
	}
	c, _, ok, err := Conf[resource.MeshTimeoutConf](r, Service("api"))
	if err != nil || !ok || c.IdleTimeout == nil || c.IdleTimeout.Duration != 3*time.Second {
		t.Errorf("merged %+v, %v, %v; want idleTimeout 3s", c, ok, err)
	}
}

func originsOf(r Rules) string {
	var s []string
	for _, o := range r.Origins() {
		s = append(s, o.String())
	}
	return strings.Join(s, " ")
}

func TestMergePatch(t *testing.T) {
	tests := []struct{ name, target, patch, want string }{
		// The example of Kuma's docs: objects merge, lists replace, an
		// empty list clears.
		{"kuma docs", `{"conf":1,"sub":{"array":[1,2,3],"other":50,"other-array":[3,4,5]}}`,
			`{"sub":{"array":[],"other-array":[5,6],"extra":2}}`,
			`{"conf":1,"sub":{"array":[],"extra":2,"other":50,"other-array":[5,6]}}`},
		// RFC 7386 appendix A cases.
		{"replace value", `{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{"add key", `{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{"null removes", `{"a":"b"}`, `{"a":null}`, `{}`},
		{"nested null", `{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{"object replaces list", `{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{"object over scalar", `{"a":"foo"}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		{"explicit zero wins", `{"n":5,"d":"1h","b":true}`, `{"n":0,"d":"0s","b":false}`, `{"b":false,"d":"0s","n":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst, patch map[string]any
			if err := json.Unmarshal([]byte(tt.target), &dst); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.patch), &patch); err != nil {
				t.Fatal(err)
			}
			before, _ := json.Marshal(patch)
			mergePatch(dst, patch)
			got, _ := json.Marshal(dst)
			if string(got) != tt.want {
				t.Errorf("merge = %s, want %s", got, tt.want)
			}
			if after, _ := json.Marshal(patch); string(after) != string(before) {
				t.Errorf("the patch changed: %s -> %s", before, after)
			}
		})
	}
}

// TestMergeDoesNotShare checks that merging twice from the same entries
// gives the same result: no entry is modified by a merge.
func TestMergeDoesNotShare(t *testing.T) {
	dp := dataplane("web-1", nil, map[string]string{resource.TagService: "web"})
	base := timeout("base", nil, time.Hour)
	five := resource.Duration{Duration: 5 * time.Second}
	base.Spec.To[0].Default.HTTP = &resource.MeshTimeoutHTTP{RequestTimeout: &five}
	over := timeout("over", ref(resource.TargetMeshService, "web", nil, nil), time.Minute)
	zero := resource.Duration{}
	over.Spec.To[0].Default.HTTP = &resource.MeshTimeoutHTTP{StreamIdleTimeout: &zero}
	r := Outbound([]*resource.MeshTimeout{over, base}, dp)
	first, err := Merge[resource.MeshTimeoutConf](r)
	if err != nil {
		t.Fatal(err)
	}
	if first.HTTP == nil || first.HTTP.RequestTimeout.Duration != 5*time.Second || first.HTTP.StreamIdleTimeout.Duration != 0 || first.IdleTimeout.Duration != time.Minute {
		t.Fatalf("merged %+v %+v", first, first.HTTP)
	}
	only, err := Merge[resource.MeshTimeoutConf](r[:1])
	if err != nil {
		t.Fatal(err)
	}
	if only.HTTP.StreamIdleTimeout != nil {
		t.Errorf("the first entry gained streamIdleTimeout from a merge: %+v", only.HTTP)
	}
	if _, err := Merge[resource.MeshRetryConf](r); err == nil {
		t.Error("merging MeshTimeout entries into a MeshRetryConf succeeded")
	}
}

func TestBySubset(t *testing.T) {
	status := func(s int32) resource.MeshFaultInjectionConf {
		return resource.MeshFaultInjectionConf{HTTP: []resource.HTTPFault{{Abort: &resource.FaultAbort{HTTPStatus: s}}}}
	}
	r := Rules{
		{Origin: Origin{"p", "from[0]"}, Subset: Subset{}, Default: status(500)},
		{Origin: Origin{"p", "from[1]"}, Subset: Service("web"), Default: status(503)},
		{Origin: Origin{"p", "from[2]"}, Subset: Subset{resource.TagService: "web", "version": "v2"}, Default: status(504)},
	}
	got, err := BySubset[resource.MeshFaultInjectionConf](r)
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{504, 503, 500}
	if len(got) != len(want) {
		t.Fatalf("%d subsets, want %d", len(got), len(want))
	}
	for i, s := range got {
		if st := s.Conf.HTTP[0].Abort.HTTPStatus; st != want[i] {
			t.Errorf("subset %v: status %d, want %d", s.Subset, st, want[i])
		}
	}
	if !reflect.DeepEqual(got[0].Origins, []Origin{{"p", "from[0]"}, {"p", "from[1]"}, {"p", "from[2]"}}) {
		t.Errorf("origins %v", got[0].Origins)
	}
}
