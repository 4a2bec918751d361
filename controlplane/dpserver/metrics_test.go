package dpserver_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
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
