package resource

import "github.com/ecsmesh/ecsmesh/api/validation"

// MeshTimeout sets connection, idle and HTTP timeouts on outbound (to) and
// inbound (from, rules) traffic (Kuma's schema).
type MeshTimeout struct {
	Meta
	Spec MeshTimeoutSpec `json:"spec"`
}

// MeshTimeoutSpec is the body of a MeshTimeout.
type MeshTimeoutSpec struct {
	// TargetRef selects the Dataplanes (or inbounds) configured; Mesh when
	// absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// To configures traffic to destinations (Mesh or MeshService).
	To []PolicyItem[MeshTimeoutConf] `json:"to,omitempty"`
	// From configures inbound traffic (Mesh callers).
	From []PolicyItem[MeshTimeoutConf] `json:"from,omitempty"`
	// Rules configures all inbound traffic (Kuma 2.10's form of from).
	Rules []PolicyRule[MeshTimeoutConf] `json:"rules,omitempty"`
}

// MeshTimeoutConf are the timeouts. Absent fields keep what a less specific
// policy set; 0 turns a timeout off (except connectionTimeout).
type MeshTimeoutConf struct {
	// ConnectionTimeout bounds TCP connection setup (Envoy default 5s).
	ConnectionTimeout *Duration `json:"connectionTimeout,omitempty"`
	// IdleTimeout closes connections without traffic (default 1h).
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
	// HTTP holds the HTTP timeouts.
	HTTP *MeshTimeoutHTTP `json:"http,omitempty"`
}

// MeshTimeoutHTTP are the HTTP timeouts.
type MeshTimeoutHTTP struct {
	// RequestTimeout bounds a whole request and response (default 15s).
	RequestTimeout *Duration `json:"requestTimeout,omitempty"`
	// StreamIdleTimeout ends streams without activity (default 30m).
	StreamIdleTimeout *Duration `json:"streamIdleTimeout,omitempty"`
	// MaxStreamDuration bounds a stream's life (off by default).
	MaxStreamDuration *Duration `json:"maxStreamDuration,omitempty"`
	// MaxConnectionDuration drains connections after this long (off by
	// default).
	MaxConnectionDuration *Duration `json:"maxConnectionDuration,omitempty"`
	// RequestHeadersTimeout bounds receiving the request headers (off by
	// default).
	RequestHeadersTimeout *Duration `json:"requestHeadersTimeout,omitempty"`
}

// TopTargetRef implements Policy.
func (p *MeshTimeout) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy.
func (p *MeshTimeout) Entries() (to, from []PolicyEntry) {
	return itemEntries("to", p.Spec.To), append(itemEntries("from", p.Spec.From), ruleEntries(p.Spec.Rules)...)
}

// Validate implements Object.
func (p *MeshTimeout) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	validateInboundSpec(sp, len(p.Spec.To), len(p.Spec.From), len(p.Spec.Rules), verr)
	validateItems(sp.Field("to"), p.Spec.To, []string{TargetMesh, TargetMeshService}, p.Mesh, validateMeshTimeoutConf, verr)
	validateItems(sp.Field("from"), p.Spec.From, []string{TargetMesh}, p.Mesh, validateMeshTimeoutConf, verr)
	validateRules(sp.Field("rules"), p.Spec.Rules, validateMeshTimeoutConf, verr)
	return verr
}

func validateMeshTimeoutConf(p validation.Path, c *MeshTimeoutConf, verr *validation.Error) {
	if c.ConnectionTimeout == nil && c.IdleTimeout == nil && c.HTTP == nil {
		verr.Add(p, "must set at least one timeout")
		return
	}
	validateDurationPositive(p.Field("connectionTimeout"), c.ConnectionTimeout, verr)
	validateDurationNonNegative(p.Field("idleTimeout"), c.IdleTimeout, verr)
	if h := c.HTTP; h != nil {
		hp := p.Field("http")
		if h.RequestTimeout == nil && h.StreamIdleTimeout == nil && h.MaxStreamDuration == nil &&
			h.MaxConnectionDuration == nil && h.RequestHeadersTimeout == nil {
			verr.Add(hp, "must set at least one timeout")
		}
		validateDurationNonNegative(hp.Field("requestTimeout"), h.RequestTimeout, verr)
		validateDurationNonNegative(hp.Field("streamIdleTimeout"), h.StreamIdleTimeout, verr)
		validateDurationNonNegative(hp.Field("maxStreamDuration"), h.MaxStreamDuration, verr)
		validateDurationNonNegative(hp.Field("maxConnectionDuration"), h.MaxConnectionDuration, verr)
		validateDurationNonNegative(hp.Field("requestHeadersTimeout"), h.RequestHeadersTimeout, verr)
	}
}
