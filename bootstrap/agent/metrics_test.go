package agent_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
)

func scrape(addr string) (string, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode == 200
}

// TestMeshMetricEndpoint: a MeshMetric applied at the control plane
// reaches the agent with the next health syncs; the agent serves Envoy's
// stats (from the admin on loopback) and its own, labelled with the mesh,
// service and workload; removing the policy closes the endpoint.
func TestMeshMetricEndpoint(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	r := w.startAgent(w.httpClient())
	waitRunning(t, w, r)
	eventually(t, r.clk, time.Second, "inbound ready", func() bool { return w.inboundState() == resource.StateReady })
	if addr := r.a.MetricsAddr(); addr != "" {
		t.Fatalf("metrics endpoint %s without a MeshMetric", addr)
	}
	mm := &resource.MeshMetric{Meta: resource.Meta{Type: resource.KindMeshMetric, Mesh: "default", Name: "all"},
		Spec: resource.MeshMetricSpec{Default: resource.MeshMetricConf{Backends: []resource.MetricBackend{{Type: resource.MetricPrometheus}}}}}
	ctx := context.Background()
	if _, err := manager.New(w.st).Apply(ctx, []resource.Object{mm}); err != nil {
		t.Fatal(err)
	}
	eventually(t, r.clk, time.Second, "the metrics endpoint", func() bool { return r.a.MetricsAddr() != "" })
	if !r.logs.Contains("metrics listen 0.0.0.0:5670") {
		t.Errorf("the endpoint did not listen on Kuma's default 0.0.0.0:5670")
	}
	body, ok := scrape(r.a.MetricsAddr())
	if !ok {
		t.Fatalf("scrape: %s", body)
	}
	const l = `mesh="default",service="web",workload="web"`
	for _, want := range []string{
		`envoy_cluster_upstream_rq_total{envoy_cluster_name="backend",` + l + `} 42`,
		`ecsmesh_dp_envoy_starts_total{` + l + `} 1`,
		`ecsmesh_dp_token_requests_total{call="bootstrap",mesh="default",result="ok",service="web",workload="web"} 1`,
		`ecsmesh_dp_token_expiry_timestamp_seconds{` + l + `} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if !r.envoy.Has("stats usedonly") {
		t.Errorf("Envoy's admin was not asked for used stats: %v", r.envoy.Events())
	}
	if err := manager.New(w.st).Delete(ctx, resource.KindMeshMetric, "default", "all"); err != nil {
		t.Fatal(err)
	}
	eventually(t, r.clk, time.Second, "the endpoint closed", func() bool { return r.a.MetricsAddr() == "" })
}
