package generate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/policy"
)

// Policies are a mesh's traffic policies, by kind.
type Policies struct {
	HTTPRoutes   []*resource.MeshHTTPRoute
	TCPRoutes    []*resource.MeshTCPRoute
	Timeouts     []*resource.MeshTimeout
	Retries      []*resource.MeshRetry
	Breakers     []*resource.MeshCircuitBreaker
	HealthChecks []*resource.MeshHealthCheck
	RateLimits   []*resource.MeshRateLimit
	Faults       []*resource.MeshFaultInjection
	AccessLogs   []*resource.MeshAccessLog
	Traces       []*resource.MeshTrace
}

// PolicyKinds are the traffic policy kinds Policies holds: those the
// generator turns into Envoy configuration.
var PolicyKinds = []string{
	resource.KindMeshHTTPRoute, resource.KindMeshTCPRoute, resource.KindMeshTimeout, resource.KindMeshRetry, resource.KindMeshCircuitBreaker,
	resource.KindMeshHealthCheck, resource.KindMeshRateLimit, resource.KindMeshFaultInjection, resource.KindMeshAccessLog,
	resource.KindMeshTrace,
}

// Add files p under its kind. It reports false for a kind the generator
// does not turn into Envoy configuration.
func (ps *Policies) Add(p resource.Policy) bool {
	switch p := p.(type) {
	case *resource.MeshHTTPRoute:
		ps.HTTPRoutes = append(ps.HTTPRoutes, p)
	case *resource.MeshTCPRoute:
		ps.TCPRoutes = append(ps.TCPRoutes, p)
	case *resource.MeshTimeout:
		ps.Timeouts = append(ps.Timeouts, p)
	case *resource.MeshRetry:
		ps.Retries = append(ps.Retries, p)
	case *resource.MeshCircuitBreaker:
		ps.Breakers = append(ps.Breakers, p)
	case *resource.MeshHealthCheck:
		ps.HealthChecks = append(ps.HealthChecks, p)
	case *resource.MeshRateLimit:
		ps.RateLimits = append(ps.RateLimits, p)
	case *resource.MeshFaultInjection:
		ps.Faults = append(ps.Faults, p)
	case *resource.MeshAccessLog:
		ps.AccessLogs = append(ps.AccessLogs, p)
	case *resource.MeshTrace:
		ps.Traces = append(ps.Traces, p)
	default:
		return false
	}
	return true
}

// toConf is what the policies selecting a caller configure for its calls
// to one destination service, merged (see package policy).
type toConf struct {
	// HTTPRoutes are MeshHTTPRoute's routes, in Envoy's order (HTTP
	// destinations); TCPRoute is MeshTCPRoute's (TCP destinations).
	HTTPRoutes []policy.HTTPRoute               `json:"httpRoutes,omitempty"`
	TCPRoute   *resource.TCPRouteConf           `json:"tcpRoute,omitempty"`
	Timeout    *resource.MeshTimeoutConf        `json:"timeout,omitempty"`
	Retry      *resource.MeshRetryConf          `json:"retry,omitempty"`
	Breaker    *resource.MeshCircuitBreakerConf `json:"circuitBreaker,omitempty"`
	Health     *resource.MeshHealthCheckConf    `json:"healthCheck,omitempty"`
	// AccessLog is MeshAccessLog's backends for calls to the service.
	AccessLog *resource.MeshAccessLogConf `json:"accessLog,omitempty"`
	// Trace is MeshTrace's configuration for calls to the service.
	Trace *resource.MeshTraceConf `json:"trace,omitempty"`
	// mesh names the mesh (for access log placeholders); destIDs are the
	// service's SPIFFE IDs (span tags).
	mesh    string
	destIDs []string
	// Origins are the policy entries merged, per kind.
	Origins map[string][]policy.Origin `json:"origins,omitempty"`
	key     string
}

// toRules are the to entries of every kind that apply to one group of
// callers.
type toRules struct {
	httpRoute, tcpRoute, timeout, retry, breaker, health, accessLog, trace policy.Rules
	mesh                                                                   string
}

// policyIndex holds a mesh's policies, sorted by precedence, and memoizes
// what a caller or an inbound resolves to by the only things selection
// reads: inbound tags, and the dataplane's name and labels when some
// policy targets Dataplanes.
type policyIndex struct {
	ps          Policies
	byDataplane bool
	// outbound lists the policies with to entries, in the order of
	// viewKey's selection.
	outbound []selector
	// inTimeouts, inBreakers, inRateLimits and inFaults are the policies
	// with from or rules entries.
	inTimeouts   []*resource.MeshTimeout
	inBreakers   []*resource.MeshCircuitBreaker
	inRateLimits []*resource.MeshRateLimit
	inFaults     []*resource.MeshFaultInjection
	inAccessLogs []*resource.MeshAccessLog
	inTraces     []*resource.MeshTrace
	mesh         string
	// callers are the mesh's inbounds with their dataplanes' identities
	// (MeshFaultInjection selects callers by tags).
	callers  []caller
	viewKeys map[string]string
	inbound  map[string]*fromConf
}

// selector is what viewKey needs of a policy with to entries.
type selector struct {
	ref resource.PolicyTargetRef
	id  string // "<kind>/<name>;"
}

func newPolicyIndex(in Policies, mesh string) *policyIndex {
	pi := &policyIndex{viewKeys: map[string]string{}, inbound: map[string]*fromConf{}, mesh: mesh}
	pi.ps.HTTPRoutes = sortedIn(in.HTTPRoutes, mesh, &pi.byDataplane)
	pi.ps.TCPRoutes = sortedIn(in.TCPRoutes, mesh, &pi.byDataplane)
	pi.ps.Timeouts = sortedIn(in.Timeouts, mesh, &pi.byDataplane)
	pi.ps.Retries = sortedIn(in.Retries, mesh, &pi.byDataplane)
	pi.ps.Breakers = sortedIn(in.Breakers, mesh, &pi.byDataplane)
	pi.ps.HealthChecks = sortedIn(in.HealthChecks, mesh, &pi.byDataplane)
	pi.ps.RateLimits = sortedIn(in.RateLimits, mesh, &pi.byDataplane)
	pi.ps.Faults = sortedIn(in.Faults, mesh, &pi.byDataplane)
	pi.ps.AccessLogs = sortedIn(in.AccessLogs, mesh, &pi.byDataplane)
	pi.ps.Traces = sortedIn(in.Traces, mesh, &pi.byDataplane)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.HTTPRoutes)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.TCPRoutes)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.Timeouts)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.Retries)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.Breakers)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.HealthChecks)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.AccessLogs)
	pi.outbound = appendSelectors(pi.outbound, pi.ps.Traces)
	pi.inTimeouts, pi.inBreakers = withFrom(pi.ps.Timeouts), withFrom(pi.ps.Breakers)
	pi.inRateLimits, pi.inFaults = withFrom(pi.ps.RateLimits), withFrom(pi.ps.Faults)
	pi.inAccessLogs, pi.inTraces = withFrom(pi.ps.AccessLogs), withFrom(pi.ps.Traces)
	return pi
}

func withFrom[P resource.Policy](ps []P) []P {
	var out []P
	for _, p := range ps {
		if _, from := p.Entries(); len(from) > 0 {
			out = append(out, p)
		}
	}
	return out
}

func appendSelectors[P resource.Policy](out []selector, ps []P) []selector {
	for _, p := range ps {
		if to, _ := p.Entries(); len(to) > 0 {
			m := p.GetMeta()
			out = append(out, selector{ref: p.TopTargetRef(), id: m.Type + "/" + m.Name + ";"})
		}
	}
	return out
}

func sortedIn[P resource.Policy](ps []P, mesh string, byDataplane *bool) []P {
	out := make([]P, 0, len(ps))
	for _, p := range ps {
		if p.GetMeta().Mesh == mesh {
			out = append(out, p)
			*byDataplane = *byDataplane || p.TopTargetRef().Kind == resource.TargetDataplane
		}
	}
	policy.Sort(out)
	return out
}

func (pi *policyIndex) empty() bool {
	p := pi.ps
	return len(p.HTTPRoutes)+len(p.TCPRoutes)+len(p.Timeouts)+len(p.Retries)+len(p.Breakers)+len(p.HealthChecks)+len(p.RateLimits)+len(p.Faults)+len(p.AccessLogs)+len(p.Traces) == 0
}

// signature is what selection reads of dp (all inbounds when inbound < 0).
func (pi *policyIndex) signature(dp *resource.Dataplane, inbound int) string {
	var sb strings.Builder
	if pi.byDataplane {
		sb.WriteString(dp.Name + "\x01" + tagsKey(dp.Labels) + "\x01")
	}
	for i := range dp.Networking.Inbound {
		if inbound < 0 || inbound == i {
			sb.WriteString(tagsKey(dp.Networking.Inbound[i].Tags) + "\x01")
		}
	}
	return sb.String()
}

func tagsKey(tags map[string]string) string {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		sb.WriteString(k + "=" + tags[k] + "\x00")
	}
	return sb.String()
}

// viewKey identifies the set of policies with to entries that select dp:
// callers with equal keys get equal outbound configuration. It is a hash
// of the policies' kinds and names, in order (views checks that no two
// sets share one); "" when no policy selects dp.
func (pi *policyIndex) viewKey(dp *resource.Dataplane) string {
	k, _ := pi.selection(dp)
	return k
}

// selection returns viewKey and the set it hashes.
func (pi *policyIndex) selection(dp *resource.Dataplane) (key, set string) {
	if len(pi.outbound) == 0 {
		return "", ""
	}
	sig := pi.signature(dp, -1)
	if k, ok := pi.viewKeys[sig]; ok {
		return k, pi.viewKeys["\x00"+k]
	}
	var sb strings.Builder
	for _, s := range pi.outbound {
		if s.ref.Kind == resource.TargetMesh || policy.Selects(s.ref, dp) {
			sb.WriteString(s.id)
		}
	}
	if set = sb.String(); set != "" {
		key = HashStrings(set)
	}
	pi.viewKeys[sig], pi.viewKeys["\x00"+key] = key, set
	return key, set
}

// toRules are the to entries that apply to dp as a caller.
func (pi *policyIndex) toRules(dp *resource.Dataplane) toRules {
	return toRules{
		httpRoute: policy.Outbound(pi.ps.HTTPRoutes, dp),
		tcpRoute:  policy.Outbound(pi.ps.TCPRoutes, dp),
		timeout:   policy.Outbound(pi.ps.Timeouts, dp),
		retry:     policy.Outbound(pi.ps.Retries, dp),
		breaker:   policy.Outbound(pi.ps.Breakers, dp),
		health:    policy.Outbound(pi.ps.HealthChecks, dp),
		accessLog: policy.Outbound(pi.ps.AccessLogs, dp),
		trace:     policy.Outbound(pi.ps.Traces, dp),
		mesh:      pi.mesh,
	}
}

// resolveTo merges the rules that apply to calls to service; nil when
// none does. Routes apply by protocol: MeshHTTPRoute to HTTP, HTTP/2 and
// gRPC services, MeshTCPRoute to TCP ones.
func (r toRules) resolveTo(service, protocol string) (*toConf, error) {
	tags := policy.Service(service)
	tc := &toConf{Origins: map[string][]policy.Origin{}}
	var err error
	if len(r.httpRoute) > 0 && isHTTP(protocol) {
		rules, err := policy.HTTPRouteRules(r.httpRoute, tags)
		if err != nil {
			return nil, fmt.Errorf("generate: resolving %s: %w", resource.KindMeshHTTPRoute, err)
		}
		tc.HTTPRoutes = policy.SortRoutes(rules)
		for _, rule := range rules {
			for _, o := range rule.Origins {
				if !slices.Contains(tc.Origins[resource.KindMeshHTTPRoute], o) {
					tc.Origins[resource.KindMeshHTTPRoute] = append(tc.Origins[resource.KindMeshHTTPRoute], o)
				}
			}
		}
	}
	if !isHTTP(protocol) {
		if tc.TCPRoute, err = conf[resource.TCPRouteConf](r.tcpRoute, tags, resource.KindMeshTCPRoute, tc.Origins); err != nil {
			return nil, err
		}
	}
	if tc.Timeout, err = conf[resource.MeshTimeoutConf](r.timeout, tags, resource.KindMeshTimeout, tc.Origins); err != nil {
		return nil, err
	}
	if tc.Retry, err = conf[resource.MeshRetryConf](r.retry, tags, resource.KindMeshRetry, tc.Origins); err != nil {
		return nil, err
	}
	if tc.Breaker, err = conf[resource.MeshCircuitBreakerConf](r.breaker, tags, resource.KindMeshCircuitBreaker, tc.Origins); err != nil {
		return nil, err
	}
	if tc.Health, err = conf[resource.MeshHealthCheckConf](r.health, tags, resource.KindMeshHealthCheck, tc.Origins); err != nil {
		return nil, err
	}
	if tc.AccessLog, err = conf[resource.MeshAccessLogConf](r.accessLog, tags, resource.KindMeshAccessLog, tc.Origins); err != nil {
		return nil, err
	}
	if tc.Trace, err = conf[resource.MeshTraceConf](r.trace, tags, resource.KindMeshTrace, tc.Origins); err != nil {
		return nil, err
	}
	tc.mesh = r.mesh
	if len(tc.Origins) == 0 {
		return nil, nil
	}
	return tc, tc.setKey()
}

func (tc *toConf) setKey() error {
	b, err := json.Marshal(tc)
	if err != nil {
		return fmt.Errorf("generate: encoding policy configuration: %w", err)
	}
	tc.key = string(b)
	return nil
}

// conf merges the rules that apply to tags into a *C, recording where it
// came from under kind; nil when none applies.
func conf[C any](r policy.Rules, tags policy.Subset, kind string, origins map[string][]policy.Origin) (*C, error) {
	if len(r) == 0 {
		return nil, nil
	}
	c, from, ok, err := policy.Conf[C](r, tags)
	if err != nil {
		return nil, fmt.Errorf("generate: resolving %s: %w", kind, err)
	}
	if !ok {
		return nil, nil
	}
	origins[kind] = from
	return &c, nil
}

func inboundRules[P resource.Policy](ps []P, dp *resource.Dataplane, i int) policy.Rules {
	if len(ps) == 0 {
		return nil
	}
	return policy.Inbound(ps, dp)[i]
}

// AppliedPolicies renders, as JSON, the traffic policy configuration n's
// resources carry: per destination service and per inbound port, each
// kind's merged configuration and the policy entries it came from, in
// the order they were merged. It is nil when no policy applies.
func (n *Node) AppliedPolicies() (json.RawMessage, error) {
	if len(n.Outbound) == 0 && len(n.Inbound) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(struct {
		Outbound map[string]*toConf `json:"outbound,omitempty"`
		Inbound  map[int]*fromConf  `json:"inbound,omitempty"`
	}{n.Outbound, n.Inbound})
	if err != nil {
		return nil, fmt.Errorf("generate: encoding applied policies: %w", err)
	}
	return b, nil
}
