package resource

import "github.com/ecsmesh/ecsmesh/api/validation"

// MeshTCPRoute splits TCP connections to a destination between weighted
// backends (Kuma's schema).
type MeshTCPRoute struct {
	Meta
	Spec MeshTCPRouteSpec `json:"spec"`
}

// MeshTCPRouteSpec is the body of a MeshTCPRoute.
type MeshTCPRouteSpec struct {
	// TargetRef selects the calling Dataplanes; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// To lists the destinations routed.
	To []TCPRouteTo `json:"to,omitempty"`
}

// TCPRouteTo routes the connections to one destination (a MeshService).
type TCPRouteTo struct {
	TargetRef PolicyTargetRef `json:"targetRef"`
	// Rules holds at most one rule (TCP routes have no matches); without
	// one, connections go to the destination itself.
	Rules []TCPRouteRule `json:"rules,omitzero"`
}

// TCPRouteRule holds the route's conf.
type TCPRouteRule struct {
	Default TCPRouteConf `json:"default"`
}

// TCPRouteConf lists the backends.
type TCPRouteConf struct {
	BackendRefs []BackendRef `json:"backendRefs,omitzero"`
}

// TopTargetRef implements Policy.
func (p *MeshTCPRoute) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy: each to entry's Default is its TCPRouteConf,
// the destination itself with weight 1 when it has no rule.
func (p *MeshTCPRoute) Entries() (to, from []PolicyEntry) {
	for i, t := range p.Spec.To {
		conf := TCPRouteConf{BackendRefs: []BackendRef{{Kind: TargetMeshService, Name: t.TargetRef.Name}}}
		if len(t.Rules) > 0 {
			conf = t.Rules[0].Default
		}
		to = append(to, PolicyEntry{Field: "to", Index: i, TargetRef: t.TargetRef, Default: conf})
	}
	return to, nil
}

// Validate implements Object.
func (p *MeshTCPRoute) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	if len(p.Spec.To) == 0 {
		verr.Add(sp.Field("to"), "must have at least one entry")
	}
	for i, to := range p.Spec.To {
		tp := sp.Field("to").Index(i)
		validateTargetRef(tp.Field("targetRef"), to.TargetRef, []string{TargetMeshService}, p.Mesh, verr)
		if len(to.Rules) > 1 {
			verr.Add(tp.Field("rules"), "must have at most one rule: a TCP route has no matches")
		}
		for j, r := range to.Rules {
			bp := tp.Field("rules").Index(j).Field("default").Field("backendRefs")
			if len(r.Default.BackendRefs) == 0 {
				verr.Add(bp, "must list at least one backend")
			}
			validateBackendRefs(bp, r.Default.BackendRefs, verr)
		}
	}
	return verr
}
