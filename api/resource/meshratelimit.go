package resource

import (
	"time"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// MeshRateLimit limits the requests (HTTP) or connections (TCP) an inbound
// accepts per interval, with a local token bucket in each sidecar (Kuma's
// schema).
type MeshRateLimit struct {
	Meta
	Spec MeshRateLimitSpec `json:"spec"`
}

// MeshRateLimitSpec is the body of a MeshRateLimit.
type MeshRateLimitSpec struct {
	_ unsupported `refused:"to" why:"to applies rate limits on gateways; ecsmesh runs sidecars only, use from or rules to limit a service's inbound traffic"`
	// TargetRef selects the inbounds limited; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// From configures the limits (Mesh callers).
	From []PolicyItem[MeshRateLimitConf] `json:"from,omitempty"`
	// Rules configures the limits (Kuma 2.10's form of from).
	Rules []PolicyRule[MeshRateLimitConf] `json:"rules,omitempty"`
}

// MeshRateLimitConf holds the local limits.
type MeshRateLimitConf struct {
	Local *LocalRateLimit `json:"local,omitempty"`
}

// LocalRateLimit holds the HTTP and TCP limits.
type LocalRateLimit struct {
	HTTP *LocalHTTPRateLimit `json:"http,omitempty"`
	TCP  *LocalTCPRateLimit  `json:"tcp,omitempty"`
}

// LocalHTTPRateLimit limits requests.
type LocalHTTPRateLimit struct {
	// Disabled turns a less specific policy's limit off.
	Disabled *bool `json:"disabled,omitempty"`
	// RequestRate is how many requests per interval.
	RequestRate *Rate `json:"requestRate,omitempty"`
	// OnRateLimit shapes the refusal (default 429).
	OnRateLimit *OnRateLimit `json:"onRateLimit,omitempty"`
}

// LocalTCPRateLimit limits new connections.
type LocalTCPRateLimit struct {
	Disabled *bool `json:"disabled,omitempty"`
	// ConnectionRate is how many connections per interval.
	ConnectionRate *Rate `json:"connectionRate,omitempty"`
}

// Rate is Num units per Interval.
type Rate struct {
	Num      uint32   `json:"num"`
	Interval Duration `json:"interval"`
}

// OnRateLimit is the answer to a limited request.
type OnRateLimit struct {
	// Status code (default 429).
	Status *uint32 `json:"status,omitempty"`
	// Headers added to the answer.
	Headers *HeaderAdditions `json:"headers,omitempty"`
}

// minRateInterval is Kuma's (and Envoy's token bucket's) smallest interval.
const minRateInterval = 50 * time.Millisecond

// TopTargetRef implements Policy.
func (p *MeshRateLimit) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy.
func (p *MeshRateLimit) Entries() (to, from []PolicyEntry) {
	return nil, append(itemEntries("from", p.Spec.From), ruleEntries(p.Spec.Rules)...)
}

// Validate implements Object.
func (p *MeshRateLimit) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	validateInboundSpec(sp, 0, len(p.Spec.From), len(p.Spec.Rules), verr)
	validateItems(sp.Field("from"), p.Spec.From, []string{TargetMesh}, p.Mesh, validateRateLimitConf, verr)
	validateRules(sp.Field("rules"), p.Spec.Rules, validateRateLimitConf, verr)
	return verr
}

func validateRateLimitConf(p validation.Path, c *MeshRateLimitConf, verr *validation.Error) {
	lp := p.Field("local")
	if c.Local == nil {
		verr.Add(lp, "must be set")
		return
	}
	if c.Local.HTTP == nil && c.Local.TCP == nil {
		verr.Add(lp, "must set http, tcp or both")
	}
	if h := c.Local.HTTP; h != nil {
		hp := lp.Field("http")
		if h.Disabled == nil && h.RequestRate == nil && h.OnRateLimit == nil {
			verr.Add(hp, "must set at least one of disabled, requestRate or onRateLimit")
		}
		validateRate(hp.Field("requestRate"), h.RequestRate, verr)
		if o := h.OnRateLimit; o != nil {
			if o.Status != nil {
				validateStatus(hp.Field("onRateLimit").Field("status"), int64(*o.Status), verr)
			}
			if o.Headers != nil {
				validateHeaderAdditions(hp.Field("onRateLimit").Field("headers"), o.Headers, verr)
			}
		}
	}
	if t := c.Local.TCP; t != nil {
		tp := lp.Field("tcp")
		if t.Disabled == nil && t.ConnectionRate == nil {
			verr.Add(tp, "must set disabled, connectionRate or both")
		}
		validateRate(tp.Field("connectionRate"), t.ConnectionRate, verr)
	}
}

func validateRate(p validation.Path, r *Rate, verr *validation.Error) {
	if r == nil {
		return
	}
	if r.Num == 0 {
		verr.Add(p.Field("num"), "must be greater than zero")
	}
	if r.Interval.Duration < minRateInterval {
		verr.Add(p.Field("interval"), "must be at least 50ms")
	}
}
