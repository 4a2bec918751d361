package generate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	httplocalrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// withPolicies is the golden mesh plus web-2, a second web dataplane, and
// the policies of yamlDocs.
func withPolicies(t testing.TB, yamlDocs string) *Input {
	in := smallMesh(t, resource.FilterTypeWasm)
	in.Dataplanes = append(in.Dataplanes, decode[*resource.Dataplane](t, "Dataplane", `{"mesh":"default","name":"web-2","labels":{"kuma.io/workload":"web"},"networking":{"address":"10.0.1.11",
	  "inbound":[{"port":15000,"servicePort":8080,"tags":{"kuma.io/service":"web","kuma.io/protocol":"http","version":"v2"}}]}}`))
	in.Online["web-2"] = true
	if yamlDocs == "" {
		return in
	}
	docs, err := resource.Decode([]byte(yamlDocs))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if !in.Policies.Add(d.Object.(resource.Policy)) {
			t.Fatalf("%T is not a generated policy kind", d.Object)
		}
	}
	return in
}

// The merge-order example: a Mesh-wide default, overridden for callers of
// service web, overridden again for the Dataplane web-1.
const mergeTimeouts = `
type: MeshTimeout
mesh: default
name: mesh-default
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default: {connectionTimeout: 2s, idleTimeout: 20m, http: {requestTimeout: 10s, streamIdleTimeout: 1m}}
---
type: MeshTimeout
mesh: default
name: web-to-api
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: api}
    default: {http: {requestTimeout: 3s}}
---
type: MeshTimeout
mesh: default
name: web-1-to-api
spec:
  targetRef: {kind: Dataplane, name: web-1}
  to:
  - targetRef: {kind: MeshService, name: api}
    default: {http: {requestTimeout: 1s}}
`

var policyGolden = []struct {
	name, docs string
	nodes      []string
}{
	{"meshtimeout", mergeTimeouts + `---
type: MeshTimeout
mesh: default
name: inbound-web
spec:
  targetRef: {kind: MeshService, name: web}
  from:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 30m, http: {requestTimeout: 20s, streamIdleTimeout: 2m, maxStreamDuration: 1h, requestHeadersTimeout: 5s}}
`, []string{"web-1", "web-2", "redis-1"}},
	{"meshretry", `
type: MeshRetry
mesh: default
name: retries
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      tcp: {maxConnectAttempt: 3}
      http: {numRetries: 2, perTryTimeout: 1s, backOff: {baseInterval: 100ms, maxInterval: 1s}, retryOn: [5xx, ConnectFailure, "503", HttpMethodGet]}
      grpc: {numRetries: 4, retryOn: [Unavailable, DeadlineExceeded]}
`, []string{"web-1"}},
	{"meshcircuitbreaker", `
type: MeshCircuitBreaker
mesh: default
name: breakers
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: redis}
    default:
      connectionLimits: {maxConnections: 100, maxPendingRequests: 10}
      outlierDetection:
        interval: 5s
        baseEjectionTime: 30s
        maxEjectionPercent: 20
        detectors: {totalFailures: {consecutive: 5}, failurePercentage: {threshold: 85, minimumHosts: 2}}
`, []string{"web-1"}},
	{"meshhealthcheck", `
type: MeshHealthCheck
mesh: default
name: checks
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: api}
    default: {interval: 10s, timeout: 2s, unhealthyThreshold: 3, healthyThreshold: 1, grpc: {serviceName: api.v1.Health}}
  - targetRef: {kind: MeshService, name: redis}
    default: {interval: 5s, tcp: {send: UElORw==, receive: [UE9ORw==]}}
`, []string{"web-1"}},
	{"meshratelimit", `
type: MeshRateLimit
mesh: default
name: limits
spec:
  targetRef: {kind: Mesh}
  from:
  - targetRef: {kind: Mesh}
    default:
      local:
        http: {requestRate: {num: 100, interval: 1s}, onRateLimit: {status: 429, headers: {set: [{name: x-limited, value: "true"}]}}}
        tcp: {connectionRate: {num: 10, interval: 1s}}
`, []string{"web-1", "redis-1"}},
	{"meshfaultinjection", `
type: MeshFaultInjection
mesh: default
name: faults
spec:
  targetRef: {kind: MeshService, name: web}
  from:
  - targetRef: {kind: Mesh}
    default:
      http:
      - abort: {httpStatus: 503, percentage: 10}
      - delay: {value: 2s, percentage: 5.5}
`, []string{"web-1"}},
	{"meshhttproute", httpRoutes, []string{"web-1", "redis-1"}},
	{"meshtcproute", `
type: MeshTCPRoute
mesh: default
name: redis-split
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: redis}
    rules:
    - default:
        backendRefs: [{kind: MeshService, name: redis, weight: 80}, {kind: MeshService, name: web, weight: 20}]
`, []string{"web-1"}},
	{"meshaccesslog", accessLogPolicy, []string{"web-1", "redis-1"}},
	{"meshtrace", tracePolicy, []string{"web-1"}},
}

const httpRoutes = `
type: MeshHTTPRoute
mesh: default
name: web-canary
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: web}
    rules:
    - matches: [{path: {type: PathPrefix, value: /v2}}]
      default:
        filters:
        - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-canary, value: "yes"}], remove: [x-debug]}}
        - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}
        - {type: RequestMirror, requestMirror: {percentage: 5, backendRef: {kind: MeshService, name: api}}}
        backendRefs:
        - {kind: MeshServiceSubset, name: web, tags: {version: v2}, weight: 90}
        - {kind: MeshService, name: web, weight: 10}
    - matches: [{path: {type: Exact, value: /old}, method: GET}]
      default:
        filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}, statusCode: 301}}]
    - matches: [{path: {type: PathPrefix, value: /api}, headers: [{type: Exact, name: x-team, value: payments}]}]
      default:
        backendRefs: [{kind: MeshService, name: api}]
`

// TestPolicyGolden renders, for each policy kind, the dataplanes it
// changes, checks every resource validates and is consistent, and
// compares with testdata/policy/<kind>.<node>.json.
func TestPolicyGolden(t *testing.T) {
	for _, tc := range policyGolden {
		for _, node := range tc.nodes {
			file := tc.name + "." + node + ".json"
			t.Run(file, func(t *testing.T) {
				b := NewBuilder()
				m, err := b.Mesh(withPolicies(t, tc.docs))
				if err != nil {
					t.Fatal(err)
				}
				snap := snapshotOf(t, b, m, node, true)
				checkSnapshot(t, snap)
				got, err := snap.JSON()
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", "policy", file)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the generated config (run with -update after checking the diff)", path)
				}
			})
		}
	}
}

func unpack[M proto.Message](t *testing.T, s Snapshot, typ, name string, m M) M {
	t.Helper()
	for _, r := range s[typ] {
		if r.Name == name {
			a, err := r.Packed()
			if err != nil {
				t.Fatal(err)
			}
			if err := a.UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s %s in snapshot", typ, name)
	return m
}

// listenerHCM returns the HTTP connection manager of a listener.
func listenerHCM(t *testing.T, s Snapshot, name string) *hcmv3.HttpConnectionManager {
	t.Helper()
	l := unpack(t, s, resourcev3.ListenerType, name, &listenerv3.Listener{})
	for _, f := range l.GetFilterChains()[0].GetFilters() {
		if f.GetName() == "envoy.filters.network.http_connection_manager" {
			h := &hcmv3.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
				t.Fatal(err)
			}
			return h
		}
	}
	t.Fatalf("listener %s has no HTTP connection manager", name)
	return nil
}

func routes(h *hcmv3.HttpConnectionManager) []*routev3.Route {
	return h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
}

// TestMergeOrder: the request timeout web-1 gets for api comes from its
// Dataplane policy, web-2's from the MeshService policy, and a service no
// specific entry names keeps the Mesh default.
func TestMergeOrder(t *testing.T) {
	b := NewBuilder()
	m, err := b.Mesh(withPolicies(t, mergeTimeouts))
	if err != nil {
		t.Fatal(err)
	}
	apiRoute := func(node string) *routev3.Route {
		h := listenerHCM(t, snapshotOf(t, b, m, node, true), "outbound:127.1.0.2:8080")
		rs := routes(h)
		if len(rs) != 2 || rs[0].GetName() != "api" || rs[0].GetMatch().GetHeaders()[0].GetName() != "x-ecsmesh-cluster" {
			t.Fatalf("%s: api's VIP listener routes %v, want the api policy route before the default", node, rs)
		}
		return rs[0]
	}
	for node, want := range map[string]time.Duration{"web-1": time.Second, "web-2": 3 * time.Second, "redis-1": 10 * time.Second} {
		r := apiRoute(node)
		if got := r.GetRoute().GetTimeout().AsDuration(); got != want {
			t.Errorf("%s: api request timeout %v, want %v", node, got, want)
		}
		if got := r.GetRoute().GetIdleTimeout().AsDuration(); got != time.Minute {
			t.Errorf("%s: api stream idle timeout %v, want the Mesh default 1m", node, got)
		}
		c := unpack(t, snapshotOf(t, b, m, node, true), resourcev3.ClusterType, "api", &clusterv3.Cluster{})
		if got := c.GetConnectTimeout().AsDuration(); got != 2*time.Second {
			t.Errorf("%s: api connect timeout %v, want 2s", node, got)
		}
	}
	// web-2 and redis-1 are selected by different policies: different
	// views; web-1 alone has its Dataplane policy.
	keys := map[string]bool{}
	for _, node := range []string{"web-1", "web-2", "redis-1"} {
		n, _ := b.Node(m, m.Dataplanes[node], true)
		keys[n.ViewKey] = true
	}
	if len(keys) != 3 {
		t.Errorf("views %v, want one per distinct policy selection", keys)
	}
	// Resolution is recorded for inspection, with its origins in order.
	n, _ := b.Node(m, m.Dataplanes["web-1"], true)
	if got := n.Outbound["api"].Origins[resource.KindMeshTimeout]; len(got) != 3 || got[2].Policy != "web-1-to-api" {
		t.Errorf("web-1's api timeout origins %v", got)
	}
}

// TestPoliciesLeaveTheRestShared: without policies every dataplane uses
// the Mesh's own View; with a policy naming one destination, the other
// services keep the very same cluster and listener resources.
func TestPoliciesLeaveTheRestShared(t *testing.T) {
	b := NewBuilder()
	m, err := b.Mesh(withPolicies(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.views) != 0 {
		t.Fatalf("views without policies: %v", m.views)
	}
	m2, err := NewBuilder().Mesh(withPolicies(t, policyGolden[2].docs)) // redis circuit breaker
	if err != nil {
		t.Fatal(err)
	}
	if len(m2.views) != 1 {
		t.Fatalf("%d views, want 1 (one Mesh-wide policy)", len(m2.views))
	}
	for _, v := range m2.views {
		if v.ClusterByName["api"] != m2.ClusterByName["api"] || v.ClusterByName["redis"] == m2.ClusterByName["redis"] {
			t.Errorf("api's cluster must be shared and redis's specific")
		}
	}
	// A policy of another mesh changes nothing.
	other := strings.ReplaceAll(policyGolden[2].docs, "mesh: default", "mesh: other")
	m3, err := NewBuilder().Mesh(withPolicies(t, other))
	if err != nil {
		t.Fatal(err)
	}
	if len(m3.views) != 0 {
		t.Errorf("a policy of mesh other changed mesh default: %d views", len(m3.views))
	}
}

// TestPolicyEffects checks one effect of each kind in the Envoy protos.
func TestPolicyEffects(t *testing.T) {
	build := func(docs, node string) Snapshot {
		b := NewBuilder()
		m, err := b.Mesh(withPolicies(t, docs))
		if err != nil {
			t.Fatal(err)
		}
		return snapshotOf(t, b, m, node, true)
	}
	t.Run("retry", func(t *testing.T) {
		s := build(policyGolden[1].docs, "web-1")
		web := routes(listenerHCM(t, s, "outbound:127.1.0.1:8080"))[0].GetRoute().GetRetryPolicy()
		if web.GetRetryOn() != "5xx,connect-failure,retriable-status-codes" || web.GetNumRetries().GetValue() != 2 ||
			len(web.GetRetriableStatusCodes()) != 1 || web.GetRetriableStatusCodes()[0] != 503 || len(web.GetRetriableRequestHeaders()) != 1 {
			t.Errorf("web retry policy %v", web)
		}
		api := routes(listenerHCM(t, s, "outbound:127.1.0.2:8080"))[0].GetRoute().GetRetryPolicy()
		if api.GetRetryOn() != "unavailable,deadline-exceeded" || api.GetNumRetries().GetValue() != 4 {
			t.Errorf("api (gRPC) retry policy %v", api)
		}
		l := unpack(t, s, resourcev3.ListenerType, "outbound:127.1.0.3:8080", &listenerv3.Listener{})
		tp := &tcpproxyv3.TcpProxy{}
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(tp); err != nil || tp.GetMaxConnectAttempts().GetValue() != 3 {
			t.Errorf("redis tcp_proxy %v (%v), want max_connect_attempts 3", tp, err)
		}
	})
	t.Run("circuit breaker", func(t *testing.T) {
		c := unpack(t, build(policyGolden[2].docs, "web-1"), resourcev3.ClusterType, "redis", &clusterv3.Cluster{})
		th := c.GetCircuitBreakers().GetThresholds()[0]
		od := c.GetOutlierDetection()
		if th.GetMaxConnections().GetValue() != 100 || th.GetMaxPendingRequests().GetValue() != 10 || th.GetMaxRequests() != nil {
			t.Errorf("thresholds %v", th)
		}
		if od.GetConsecutive_5Xx().GetValue() != 5 || od.GetEnforcingConsecutive_5Xx().GetValue() != 100 ||
			od.GetEnforcingSuccessRate().GetValue() != 0 || od.GetFailurePercentageThreshold().GetValue() != 85 {
			t.Errorf("outlier detection %v: only the listed detectors may enforce", od)
		}
	})
	t.Run("health check", func(t *testing.T) {
		s := build(policyGolden[3].docs, "web-1")
		api := unpack(t, s, resourcev3.ClusterType, "api", &clusterv3.Cluster{}).GetHealthChecks()[0]
		if api.GetGrpcHealthCheck().GetServiceName() != "api.v1.Health" || api.GetInterval().AsDuration() != 10*time.Second || api.GetUnhealthyThreshold().GetValue() != 3 {
			t.Errorf("api health check %v", api)
		}
		redis := unpack(t, s, resourcev3.ClusterType, "redis", &clusterv3.Cluster{}).GetHealthChecks()[0]
		if string(redis.GetTcpHealthCheck().GetSend().GetBinary()) != "PING" || redis.GetTimeout().AsDuration() != healthCheckTimeout {
			t.Errorf("redis health check %v", redis)
		}
	})
	t.Run("rate limit and fault", func(t *testing.T) {
		h := listenerHCM(t, build(policyGolden[4].docs+"---\n"+policyGolden[5].docs, "web-1"), "inbound:10.0.1.10:15000")
		var names []string
		for _, f := range h.GetHttpFilters() {
			names = append(names, f.GetName())
		}
		want := "ecsmesh-inbound:15000,envoy.filters.http.fault,envoy.filters.http.fault,envoy.filters.http.local_ratelimit,envoy.filters.http.router"
		if strings.Join(names, ",") != want {
			t.Fatalf("inbound filters %v, want %s: faults and limits after ecsmesh's filter", names, want)
		}
		abort := &faultv3.HTTPFault{}
		if err := h.GetHttpFilters()[1].GetTypedConfig().UnmarshalTo(abort); err != nil || abort.GetAbort().GetHttpStatus() != 503 || abort.GetAbort().GetPercentage().GetNumerator() != 100000 {
			t.Errorf("abort %v (%v), want 503 for 10%%", abort, err)
		}
		delay := &faultv3.HTTPFault{}
		if err := h.GetHttpFilters()[2].GetTypedConfig().UnmarshalTo(delay); err != nil || delay.GetDelay().GetPercentage().GetNumerator() != 55000 {
			t.Errorf("delay %v (%v), want 5.5%%", delay, err)
		}
		rl := &httplocalrlv3.LocalRateLimit{}
		if err := h.GetHttpFilters()[3].GetTypedConfig().UnmarshalTo(rl); err != nil || rl.GetTokenBucket().GetMaxTokens() != 100 || rl.GetStatus().GetCode() != 429 || len(rl.GetResponseHeadersToAdd()) != 1 {
			t.Errorf("rate limit %v (%v)", rl, err)
		}
	})
	t.Run("fault by caller", func(t *testing.T) {
		b := NewBuilder()
		m, err := b.Mesh(withPolicies(t, `
type: MeshFaultInjection
mesh: default
name: api-faults
spec:
  targetRef: {kind: MeshService, name: web}
  from:
  - targetRef: {kind: Mesh}
    default: {http: [{abort: {httpStatus: 500, percentage: 10}}]}
  - targetRef: {kind: MeshServiceSubset, name: web, tags: {version: v2}}
    default: {http: [{delay: {value: 2s, percentage: 50}}]}
---
type: MeshCircuitBreaker
mesh: default
name: inbound-limits
spec:
  targetRef: {kind: MeshService, name: web}
  from:
  - targetRef: {kind: Mesh}
    default: {connectionLimits: {maxConnections: 50}}
`))
		if err != nil {
			t.Fatal(err)
		}
		s := snapshotOf(t, b, m, "web-1", true)
		fs := listenerHCM(t, s, "inbound:10.0.1.10:15000").GetHttpFilters()
		if len(fs) != 4 {
			t.Fatalf("inbound filters %v, want ecsmesh, web v2's delay, everyone else's abort, router", fs)
		}
		v2, rest := &faultv3.HTTPFault{}, &faultv3.HTTPFault{}
		if err := fs[1].GetTypedConfig().UnmarshalTo(v2); err != nil {
			t.Fatal(err)
		}
		if err := fs[2].GetTypedConfig().UnmarshalTo(rest); err != nil {
			t.Fatal(err)
		}
		web2 := m.SpiffeIDs["web-2"]
		if v2.GetDelay() == nil || v2.GetAbort() != nil || len(v2.GetHeaders()) != 1 || v2.GetHeaders()[0].GetName() != "x-ecsmesh-peer-id" ||
			v2.GetHeaders()[0].GetStringMatch().GetExact() != web2 || v2.GetHeaders()[0].GetInvertMatch() {
			t.Errorf("web v2's fault %v, want only the delay (the list replaces the Mesh one), for %s", v2, web2)
		}
		if rest.GetAbort() == nil || len(rest.GetHeaders()) != 1 || !rest.GetHeaders()[0].GetInvertMatch() || rest.GetHeaders()[0].GetStringMatch().GetExact() != web2 {
			t.Errorf("the Mesh-wide fault %v, want the abort for every caller but %s", rest, web2)
		}
		local := unpack(t, s, resourcev3.ClusterType, "localhost:8080", &clusterv3.Cluster{})
		if local.GetCircuitBreakers().GetThresholds()[0].GetMaxConnections().GetValue() != 50 {
			t.Errorf("local app cluster %v, want the inbound's circuit breaker", local)
		}
	})
	t.Run("inbound timeout", func(t *testing.T) {
		h := listenerHCM(t, build(policyGolden[0].docs, "web-1"), "inbound:10.0.1.10:15000")
		if h.GetStreamIdleTimeout().AsDuration() != 2*time.Minute || h.GetRequestHeadersTimeout().AsDuration() != 5*time.Second ||
			h.GetCommonHttpProtocolOptions().GetIdleTimeout().AsDuration() != 30*time.Minute || routes(h)[0].GetRoute().GetTimeout().AsDuration() != 20*time.Second {
			t.Errorf("inbound HCM %v", h)
		}
	})
}
