package generate

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/policy"
)

// fromConf is what the policies selecting an inbound configure for it.
type fromConf struct {
	Timeout   *resource.MeshTimeoutConf        `json:"timeout,omitempty"`
	Breaker   *resource.MeshCircuitBreakerConf `json:"circuitBreaker,omitempty"`
	RateLimit *resource.MeshRateLimitConf      `json:"rateLimit,omitempty"`
	AccessLog *resource.MeshAccessLogConf      `json:"accessLog,omitempty"`
	Trace     *resource.MeshTraceConf          `json:"trace,omitempty"`
	// Faults are MeshFaultInjection's faults by caller: the most specific
	// callers first, the whole mesh (less those) last.
	Faults  []callerFaults             `json:"faultInjection,omitempty"`
	Origins map[string][]policy.Origin `json:"origins,omitempty"`
	key     string
	mesh    string
}

// callerFaults are the faults injected into the requests of some callers.
type callerFaults struct {
	// Callers are the SPIFFE IDs the faults apply to; nil means every
	// caller except those in Except (claimed by a more specific entry).
	Callers []string                        `json:"callers,omitempty"`
	Except  []string                        `json:"except,omitempty"`
	Conf    resource.MeshFaultInjectionConf `json:"conf"`
	Origins []policy.Origin                 `json:"origins"`
}

// caller is one inbound of the mesh with its dataplane's identity.
type caller struct {
	tags map[string]string
	id   string
}

// meshCallers lists every inbound of dps whose dataplane has an identity.
func meshCallers(m *Mesh, dps []*resource.Dataplane) []caller {
	var out []caller
	for _, dp := range dps {
		id, ok := m.SpiffeIDs[dp.Name]
		if !ok {
			continue
		}
		for i := range dp.Networking.Inbound {
			out = append(out, caller{tags: dp.Networking.Inbound[i].Tags, id: id})
		}
	}
	return out
}

// fromConf resolves the from and rules entries that apply to inbound i of
// dp; nil when none does. Timeouts, circuit breakers and rate limits take
// the entries for every caller (targetRef Mesh, the only caller kind
// their validation admits); faults are resolved per caller subset.
func (pi *policyIndex) fromConf(dp *resource.Dataplane, i int) (*fromConf, error) {
	if len(pi.inTimeouts)+len(pi.inBreakers)+len(pi.inRateLimits)+len(pi.inFaults)+len(pi.inAccessLogs)+len(pi.inTraces) == 0 {
		return nil, nil
	}
	sig := pi.signature(dp, i)
	if fc, ok := pi.inbound[sig]; ok {
		return fc, nil
	}
	fc := &fromConf{Origins: map[string][]policy.Origin{}, mesh: pi.mesh}
	all := policy.Subset{}
	var err error
	if fc.Timeout, err = conf[resource.MeshTimeoutConf](inboundRules(pi.inTimeouts, dp, i), all, resource.KindMeshTimeout, fc.Origins); err != nil {
		return nil, err
	}
	if fc.Breaker, err = conf[resource.MeshCircuitBreakerConf](inboundRules(pi.inBreakers, dp, i), all, resource.KindMeshCircuitBreaker, fc.Origins); err != nil {
		return nil, err
	}
	if fc.RateLimit, err = conf[resource.MeshRateLimitConf](inboundRules(pi.inRateLimits, dp, i), all, resource.KindMeshRateLimit, fc.Origins); err != nil {
		return nil, err
	}
	if fc.AccessLog, err = conf[resource.MeshAccessLogConf](inboundRules(pi.inAccessLogs, dp, i), all, resource.KindMeshAccessLog, fc.Origins); err != nil {
		return nil, err
	}
	if fc.Trace, err = conf[resource.MeshTraceConf](inboundRules(pi.inTraces, dp, i), all, resource.KindMeshTrace, fc.Origins); err != nil {
		return nil, err
	}
	if err := pi.faults(fc, inboundRules(pi.inFaults, dp, i)); err != nil {
		return nil, err
	}
	if len(fc.Origins) == 0 {
		fc = nil
	} else {
		b, err := json.Marshal(fc)
		if err != nil {
			return nil, fmt.Errorf("generate: encoding policy configuration: %w", err)
		}
		fc.key = string(b)
	}
	pi.inbound[sig] = fc
	return fc, nil
}

// faults resolves MeshFaultInjection per caller subset: each subset's
// merged faults go to the identities of the dataplanes carrying its tags
// and not claimed by a more specific subset; the Mesh-wide faults go to
// every other caller.
func (pi *policyIndex) faults(fc *fromConf, r policy.Rules) error {
	if len(r) == 0 {
		return nil
	}
	confs, err := policy.BySubset[resource.MeshFaultInjectionConf](r)
	if err != nil {
		return fmt.Errorf("generate: resolving %s: %w", resource.KindMeshFaultInjection, err)
	}
	claimed := map[string]bool{}
	for _, sc := range confs {
		cf := callerFaults{Conf: sc.Conf, Origins: sc.Origins}
		if len(sc.Subset) == 0 {
			cf.Except = sortedKeys(claimed)
		} else {
			for _, c := range pi.callers {
				if sc.Subset.Matches(c.tags) && !claimed[c.id] && !slices.Contains(cf.Callers, c.id) {
					cf.Callers = append(cf.Callers, c.id)
				}
			}
			if len(cf.Callers) == 0 {
				continue
			}
			slices.Sort(cf.Callers)
			for _, id := range cf.Callers {
				claimed[id] = true
			}
		}
		fc.Faults = append(fc.Faults, cf)
	}
	fc.Origins[resource.KindMeshFaultInjection] = r.Origins()
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
