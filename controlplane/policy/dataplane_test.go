package policy

import (
	"reflect"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

func meshMetric(name, mesh string, top *resource.PolicyTargetRef, c resource.MeshMetricConf) *resource.MeshMetric {
	return &resource.MeshMetric{Meta: resource.Meta{Type: resource.KindMeshMetric, Mesh: mesh, Name: name},
		Spec: resource.MeshMetricSpec{TargetRef: top, Default: c}}
}

// TestDataplaneMeshMetric: the MeshMetric policies that select a Dataplane
// merge by precedence (Mesh < MeshSubset < MeshService < Dataplane); lists
// replace, unset fields keep the less specific policy's; policies of other
// meshes and of other Dataplanes do not apply.
func TestDataplaneMeshMetric(t *testing.T) {
	prom := func(port int) []resource.MetricBackend {
		return []resource.MetricBackend{{Type: resource.MetricPrometheus, Prometheus: &resource.PrometheusBackend{Port: port}}}
	}
	app := func(port int) []resource.MetricApplication { return []resource.MetricApplication{{Port: port}} }
	yes := true
	ps := []*resource.MeshMetric{
		meshMetric("svc", "default", ref(resource.TargetMeshService, "web", nil, nil), resource.MeshMetricConf{Applications: app(8888)}),
		meshMetric("mesh", "default", nil, resource.MeshMetricConf{Backends: prom(5670), Sidecar: &resource.MetricSidecar{IncludeUnused: &yes}}),
		meshMetric("other-mesh", "prod", nil, resource.MeshMetricConf{Backends: prom(1)}),
		meshMetric("dp-by-name", "default", ref(resource.TargetDataplane, "web-2", nil, nil), resource.MeshMetricConf{Backends: prom(9102)}),
		meshMetric("dp-by-label", "default", ref(resource.TargetDataplane, "", nil, map[string]string{"team": "core"}), resource.MeshMetricConf{Applications: app(9000)}),
	}
	web := map[string]string{resource.TagService: "web"}
	for _, tc := range []struct {
		name    string
		dp      *resource.Dataplane
		want    resource.MeshMetricConf
		origins []string
	}{
		{"mesh and service merge", dataplane("web-1", nil, web),
			resource.MeshMetricConf{Backends: prom(5670), Applications: app(8888), Sidecar: &resource.MetricSidecar{IncludeUnused: &yes}},
			[]string{"mesh/default[0]", "svc/default[0]"}},
		{"a Dataplane by name overrides the backends", dataplane("web-2", nil, web),
			resource.MeshMetricConf{Backends: prom(9102), Applications: app(8888), Sidecar: &resource.MetricSidecar{IncludeUnused: &yes}},
			[]string{"mesh/default[0]", "svc/default[0]", "dp-by-name/default[0]"}},
		{"labels replace the applications", dataplane("web-3", map[string]string{"team": "core"}, web),
			resource.MeshMetricConf{Backends: prom(5670), Applications: app(9000), Sidecar: &resource.MetricSidecar{IncludeUnused: &yes}},
			[]string{"mesh/default[0]", "svc/default[0]", "dp-by-label/default[0]"}},
		{"another service gets the mesh's", dataplane("redis-1", nil, map[string]string{resource.TagService: "redis"}),
			resource.MeshMetricConf{Backends: prom(5670), Sidecar: &resource.MetricSidecar{IncludeUnused: &yes}},
			[]string{"mesh/default[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, origins, ok, err := Dataplane[resource.MeshMetricConf](ps, tc.dp)
			if err != nil || !ok {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			var os []string
			for _, o := range origins {
				os = append(os, o.String())
			}
			if !reflect.DeepEqual(os, tc.origins) {
				t.Errorf("origins %v, want %v", os, tc.origins)
			}
		})
	}
	dp := dataplane("db-1", nil, map[string]string{resource.TagService: "db"})
	dp.Mesh = "staging"
	if _, _, ok, err := Dataplane[resource.MeshMetricConf](ps, dp); ok || err != nil {
		t.Errorf("a Dataplane of a mesh without MeshMetric: ok %v err %v, want none", ok, err)
	}
}
