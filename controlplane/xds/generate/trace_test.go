package generate

import (
	"testing"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

const tracePolicy = `
type: MeshTrace
mesh: default
name: zipkin
spec:
  targetRef: {kind: Mesh}
  default:
    backends: [{type: Zipkin, zipkin: {url: "http://jaeger-collector:9411/api/v2/spans"}}]
    sampling: {overall: 80, random: "0.5"}
    tags: [{name: team, literal: core}, {name: env, header: {name: X-Env, default: prod}}]
`

func TestTracing(t *testing.T) {
	b := NewBuilder()
	m, err := b.Mesh(withPolicies(t, tracePolicy))
	if err != nil {
		t.Fatal(err)
	}
	s := snapshotOf(t, b, m, "web-1", true)
	checkSnapshot(t, s)
	for _, tc := range []struct {
		listener string
		want     map[string]string // tag -> literal, header or environment name
	}{
		{"outbound:127.1.0.2:8080", map[string]string{"team": "core", "env": "x-env", TagSourceService: "ECSMESH_SERVICE",
			TagDestService: "api", TagDestSpiffeIDs: m.Services["api"].SpiffeIDs[0]}},
		{"inbound:10.0.1.10:15000", map[string]string{"team": "core", TagPeerSpiffeID: "x-ecsmesh-peer-id",
			TagLocalSpiffeID: m.SpiffeIDs["web-1"], TagDestService: "web"}},
	} {
		tr := listenerHCM(t, s, tc.listener).GetTracing()
		if tr == nil {
			t.Fatalf("%s has no tracing", tc.listener)
		}
		z := &tracev3.ZipkinConfig{}
		if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(z); err != nil {
			t.Fatal(err)
		}
		if z.GetCollectorCluster() != "zipkin:jaeger-collector:9411" || z.GetCollectorEndpoint() != "/api/v2/spans" ||
			tr.GetOverallSampling().GetValue() != 80 || tr.GetRandomSampling().GetValue() != 0.5 {
			t.Errorf("%s tracing %v", tc.listener, tr)
		}
		got := map[string]string{}
		for _, ct := range tr.GetCustomTags() {
			got[ct.GetTag()] = ct.GetLiteral().GetValue() + ct.GetRequestHeader().GetName() + ct.GetEnvironment().GetName()
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: span tag %s = %q, want %q", tc.listener, k, got[k], v)
			}
		}
	}
	c := unpack(t, s, resourcev3.ClusterType, "zipkin:jaeger-collector:9411", &clusterv3.Cluster{})
	if c.GetType() != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("collector cluster %v", c)
	}
}
