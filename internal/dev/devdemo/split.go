package devdemo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeenvoy"
)

// BackendPolicies split web's calls to backend 90/10 between the tasks
// tagged version v1 and v2, and give them a retry policy and a timeout.
const BackendPolicies = `type: MeshHTTPRoute
mesh: default
name: web-to-backend-split
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      default:
        backendRefs:
        - {kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 90}
        - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}
---
type: MeshRetry
mesh: default
name: web-to-backend-retry
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      http: {numRetries: 3, perTryTimeout: 500ms, backOff: {baseInterval: 50ms, maxInterval: 500ms}, retryOn: [5xx, ConnectFailure]}
---
type: MeshTimeout
mesh: default
name: web-to-backend-timeout
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default: {connectionTimeout: 2s, http: {requestTimeout: 2s}}
`

// Subset clusters of the split, as the CP names them.
const (
	BackendV1 = "backend~version=v1"
	BackendV2 = "backend~version=v2"
)

// SplitRequests is how many requests the split step sends; SplitSeed seeds
// the stand-in router's random source, so every run counts the same.
const (
	SplitRequests = 1000
	SplitSeed     = 14
)

// Split is what the split step observed.
type Split struct {
	// Listener is web's VIP listener for backend.
	Listener string
	// Route is the delivered route that splits backend's requests.
	Route *routev3.Route
	// Endpoints maps each subset cluster to its endpoints in web's config.
	Endpoints map[string][]string
	// Counts maps a cluster to the requests the stand-in router sent there.
	Counts map[string]int
}

// RunSplit applies BackendPolicies, waits for web's stand-in Envoy to hold
// the split route and both subset clusters with endpoints, then sends
// SplitRequests requests web → backend: each through the .wasm (outbound
// decision: x-ecsmesh-cluster) and then the stand-in router over web's
// delivered listener, counting the clusters picked.
func (d *Demo) RunSplit(ctx context.Context, records []string) (*Split, error) {
	d.Progress("Traffic policies: MeshHTTPRoute web → backend 90/10 between versions v1 and v2, MeshRetry and MeshTimeout for web → backend")
	if err := d.Apply(ctx, BackendPolicies); err != nil {
		return nil, err
	}
	vip := aValue(records, "backend.mesh.local")
	s := &Split{Listener: "outbound:" + vip + ":8080", Endpoints: map[string][]string{}, Counts: map[string]int{}}
	web := d.agents["web"]
	var outCfg string
	var rc *routev3.RouteConfiguration
	if err := d.wait(ctx, "web's route to backend with the split, retry and timeout", func() (bool, error) {
		r, err := ReadReceived(web.Dir)
		if err != nil {
			return false, nil
		}
		for _, c := range []string{BackendV1, BackendV2} {
			if !slices.Contains(r.Clusters, c) || len(r.Endpoints[c]) == 0 {
				return false, nil
			}
			s.Endpoints[c] = r.Endpoints[c]
		}
		cfg, _ := r.Filter("ecsmesh-outbound")
		if !routeHasToken(cfg, "backend") {
			return false, nil
		}
		l, err := fakeenvoy.ReadListener(filepath.Join(web.Dir, "xds.json"), s.Listener)
		if err != nil {
			return false, err
		}
		if rc, err = fakeenvoy.RouteConfigOf(l); err != nil {
			return false, err
		}
		s.Route = splitRoute(rc, "backend")
		outCfg = cfg
		return s.Route != nil && s.Route.GetRoute().GetRetryPolicy() != nil && s.Route.GetRoute().GetTimeout() != nil, nil
	}); err != nil {
		return s, err
	}
	d.Detail("web: subset clusters %s=%v, %s=%v (EDS clusters of their own)", BackendV1, s.Endpoints[BackendV1], BackendV2, s.Endpoints[BackendV2])
	d.Detail("web: listener %s, route x-ecsmesh-cluster: backend → weighted_clusters %s", s.Listener, fmtWeights(s.Route))
	d.Detail("web: route retry_policy %s", fmtRetry(s.Route.GetRoute().GetRetryPolicy()))
	d.Detail("web: route timeout %s", s.Route.GetRoute().GetTimeout().AsDuration())

	router, err := fakeenvoy.NewRouter(rc, rand.New(rand.NewPCG(SplitSeed, SplitSeed)).Uint64)
	if err != nil {
		return s, err
	}
	f, err := NewFilter(ctx, d.o.WasmFile, outCfg, map[string]string{filter.PropertyDestination: vip + ":8080"})
	if err != nil {
		return s, err
	}
	defer f.Close(ctx)
	for i := range SplitRequests {
		reply, err := f.Request([][2]string{{":method", "GET"}, {":path", fmt.Sprintf("/orders/%d", i)}, {":scheme", "http"}, {":authority", "backend.mesh.local:8080"}})
		if err != nil {
			return s, err
		}
		if reply.Status != 0 || reply.Headers[filter.HeaderCluster] != "backend" {
			return s, fmt.Errorf("devdemo: request %d to backend: the filter answered %d %q, x-ecsmesh-cluster %q", i, reply.Status, reply.Body, reply.Headers[filter.HeaderCluster])
		}
		dec := router.Route(reply.Headers)
		if dec.Route != s.Route {
			return s, fmt.Errorf("devdemo: request %d to backend took route %d (status %d), not the split", i, dec.Index, dec.Status)
		}
		s.Counts[dec.Cluster]++
	}
	d.Detail("%d requests web → backend.mesh.local:8080 (the .wasm's outbound decision, then the stand-in router, seed %d): %s %d, %s %d",
		SplitRequests, SplitSeed, BackendV1, s.Counts[BackendV1], BackendV2, s.Counts[BackendV2])
	return s, nil
}

// splitRoute returns the route that takes the filter's requests to service
// (x-ecsmesh-cluster: service) and splits them by weight.
func splitRoute(rc *routev3.RouteConfiguration, service string) *routev3.Route {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if r.GetRoute().GetWeightedClusters() == nil {
				continue
			}
			for _, h := range r.GetMatch().GetHeaders() {
				if h.GetName() == filter.HeaderCluster && h.GetStringMatch().GetExact() == service && !h.GetInvertMatch() {
					return r
				}
			}
		}
	}
	return nil
}

func fmtWeights(r *routev3.Route) string {
	var parts []string
	for _, c := range r.GetRoute().GetWeightedClusters().GetClusters() {
		parts = append(parts, fmt.Sprintf("%s: %d", c.GetName(), c.GetWeight().GetValue()))
	}
	return strings.Join(parts, ", ")
}

func fmtRetry(p *routev3.RetryPolicy) string {
	return fmt.Sprintf("retry_on %s, num_retries %d, per_try_timeout %s, back_off %s..%s",
		p.GetRetryOn(), p.GetNumRetries().GetValue(), p.GetPerTryTimeout().AsDuration(),
		p.GetRetryBackOff().GetBaseInterval().AsDuration(), p.GetRetryBackOff().GetMaxInterval().AsDuration())
}
