package dpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/dpserver"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// putPolicy stores a YAML resource in the store.
func putPolicy(t *testing.T, e *env, yaml string) {
	t.Helper()
	docs, err := resource.Decode([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	obj := docs[0].Object
	spec, err := resource.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	m := obj.GetMeta()
	if _, err := store.UpsertRecord(context.Background(), e.store, store.Record{Key: store.Key{Kind: m.Type, Mesh: m.Mesh, Name: m.Name}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
}

// TestHealthSyncDeliversMetrics: each health sync answers with the
// MeshMetric that applies to the caller's Dataplane (merged, defaults
// filled, labels from the stored Dataplane), follows policy changes, and
// says nothing without a Prometheus backend.
func TestHealthSyncDeliversMetrics(t *testing.T) {
	e := newEnv(t, false, false)
	if status, body := e.post(t, "/bootstrap", "", dpapi.BootstrapRequest{DataplaneResource: dpYAML}); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	raw, _, err := e.tokens.IssueDataplaneToken(context.Background(), token.DataplaneClaims{Mesh: "default", Name: "web-1", SPIFFEID: "spiffe://default.mesh.local/workload/web"})
	if err != nil {
		t.Fatal(err)
	}
	sync := func() *dpapi.Metrics {
		t.Helper()
		status, body := e.post(t, "/v1/health-sync", raw, dpapi.HealthSyncRequest{Ready: true})
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		var resp dpapi.HealthSyncResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Metrics
	}
	if m := sync(); m != nil {
		t.Fatalf("metrics %+v without a MeshMetric", m)
	}
	putPolicy(t, e, `type: Dataplane
mesh: default
name: redis-1
networking:
  address: 10.0.1.24
  inbound:
  - {port: 15000, servicePort: 6379, tags: {kuma.io/service: redis}}`)
	putPolicy(t, e, `type: MeshMetric
mesh: default
name: mesh-wide
spec:
  default:
    sidecar:
      profiles:
        appendProfiles: [{name: None}]
        include: [{type: Prefix, match: envoy_http_}]
    backends: [{type: Prometheus}]`)
	putPolicy(t, e, `type: MeshMetric
mesh: default
name: web
spec:
  targetRef: {kind: MeshService, name: web}
  default:
    applications: [{path: /metrics/prometheus, port: 8888}]`)
	putPolicy(t, e, `type: MeshMetric
mesh: default
name: redis
spec:
  targetRef: {kind: MeshService, name: redis}
  default:
    backends: [{type: Prometheus, prometheus: {port: 9999}}]`)
	want := &dpapi.Metrics{
		Port: 5670, Path: "/metrics",
		Include:      []dpapi.MetricMatch{{Type: "Prefix", Match: "envoy_http_"}},
		Applications: []dpapi.MetricsApplication{{Address: "127.0.0.1", Port: 8888, Path: "/metrics/prometheus"}},
		Labels:       dpapi.MetricsLabels{Mesh: "default", Service: "web", Workload: "web"},
	}
	if got := sync(); !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics\n%+v\nwant\n%+v", got, want)
	}
	// Through the cache: redis's own selection, then an in-place update.
	redis, err := e.server.HealthSync(context.Background(), dpapi.HealthSyncRequest{Mesh: "default", Name: "redis-1", Ready: true})
	if err != nil || redis.Metrics == nil || redis.Metrics.Port != 9999 || len(redis.Metrics.Applications) != 0 || redis.Metrics.Labels.Service != "redis" {
		t.Fatalf("redis-1 metrics %+v (%v), want port 9999 without applications", redis, err)
	}
	putPolicy(t, e, `type: MeshMetric
mesh: default
name: mesh-wide
spec:
  default:
    backends: [{type: Prometheus, prometheus: {port: 9102, path: /stats}}]`)
	want.Port, want.Path, want.Include, want.AllEnvoy = 9102, "/stats", nil, true
	if got := sync(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after an update, metrics\n%+v\nwant\n%+v", got, want)
	}
	putPolicy(t, e, `type: MeshMetric
mesh: default
name: web-off
spec:
  targetRef: {kind: Dataplane, name: web-1}
  default:
    backends: []`)
	if m := sync(); m != nil {
		t.Fatalf("metrics %+v after a policy removed the backends", m)
	}
}

// BenchmarkHealthSyncMetrics measures a health sync without MeshMetric
// and with 20 in the mesh, 4 of them selecting the Dataplane (resolved on
// every sync); compare the two.
func BenchmarkHealthSyncMetrics(b *testing.B) {
	for _, n := range []int{0, 20} {
		b.Run(fmt.Sprintf("meshmetrics=%d", n), func(b *testing.B) {
			st := memory.New(nil)
			defer st.Close()
			ctx := context.Background()
			tokens, err := token.New(token.Config{Store: st})
			if err != nil {
				b.Fatal(err)
			}
			s, err := dpserver.New(dpserver.Config{Store: st, Tokens: tokens, XDSPort: func() int { return 5679 }})
			if err != nil {
				b.Fatal(err)
			}
			put := func(o resource.Object) {
				spec, err := resource.Marshal(o)
				if err != nil {
					b.Fatal(err)
				}
				m := o.GetMeta()
				if _, err := store.UpsertRecord(ctx, st, store.Record{Key: store.Key{Kind: m.Type, Mesh: m.Mesh, Name: m.Name}, Spec: spec}); err != nil {
					b.Fatal(err)
				}
			}
			put(&resource.Dataplane{Meta: resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: "web-1"},
				Networking: resource.Networking{Address: "10.0.1.23", Inbound: []resource.Inbound{{Port: 15000, ServicePort: 8080, Tags: map[string]string{resource.TagService: "web"}}}}})
			for i := range n {
				put(&resource.MeshMetric{Meta: resource.Meta{Type: resource.KindMeshMetric, Mesh: "default", Name: fmt.Sprintf("m%d", i)},
					Spec: resource.MeshMetricSpec{TargetRef: &resource.PolicyTargetRef{Kind: resource.TargetMeshService, Name: []string{"web", "a", "b", "c", "d"}[i%5]},
						Default: resource.MeshMetricConf{Backends: []resource.MetricBackend{{Type: resource.MetricPrometheus}}}}})
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.HealthSync(ctx, dpapi.HealthSyncRequest{Mesh: "default", Name: "web-1", Ready: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
