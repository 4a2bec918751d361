package resource

import (
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Target kinds, actions and SPIFFE ID match types of a MeshTrafficPermission.
const (
	TargetMesh        = "Mesh"
	TargetMeshService = "MeshService"
	ActionAllow       = "Allow"
	ActionDeny        = "Deny"
	MatchExact        = "Exact"
	MatchPrefix       = "Prefix"
)

// MeshTrafficPermission allows or denies callers of a service (or of every
// service of the mesh) by SPIFFE ID. Deny beats Allow.
type MeshTrafficPermission struct {
	Meta
	Spec MeshTrafficPermissionSpec `json:"spec"`
}

// MeshTrafficPermissionSpec is the body of a MeshTrafficPermission.
type MeshTrafficPermissionSpec struct {
	// TargetRef is the protected service or the whole mesh (default).
	TargetRef *TargetRef `json:"targetRef,omitempty"`
	// From lists the rules.
	From []PermissionRule `json:"from"`
}

// TargetRef names a Mesh or a MeshService (by kuma.io/service).
type TargetRef struct {
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
}

// PermissionRule is one rule: callers matching SpiffeID get Action.
type PermissionRule struct {
	SpiffeID SpiffeIDMatch `json:"spiffeID"`
	Action   string        `json:"action"`
}

// SpiffeIDMatch matches a caller's SPIFFE ID exactly or by prefix.
type SpiffeIDMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Targets reports whether the permission applies to service.
func (p *MeshTrafficPermission) Targets(service string) bool {
	t := p.Spec.TargetRef
	return t == nil || t.Kind == TargetMesh || (t.Kind == TargetMeshService && t.Name == service)
}

// Validate implements Object.
func (p *MeshTrafficPermission) Validate() *validation.Error {
	verr := &validation.Error{}
	validateMeta(&p.Meta, ScopeMesh, verr)
	sp := validation.Root().Field("spec")
	if t := p.Spec.TargetRef; t != nil {
		tp := sp.Field("targetRef")
		switch t.Kind {
		case TargetMesh:
			if t.Name != "" {
				verr.Add(tp.Field("name"), "must not be set when kind is Mesh")
			}
		case TargetMeshService:
			if !ValidServiceName(t.Name) {
				verr.Add(tp.Field("name"), "must name the protected service (its kuma.io/service)")
			}
		default:
			verr.Add(tp.Field("kind"), "must be Mesh or MeshService")
		}
	}
	if len(p.Spec.From) == 0 {
		verr.Add(sp.Field("from"), "must have at least one rule")
	}
	for i, r := range p.Spec.From {
		rp := sp.Field("from").Index(i)
		switch r.Action {
		case ActionAllow, ActionDeny:
		default:
			verr.Add(rp.Field("action"), "must be Allow or Deny")
		}
		vp := rp.Field("spiffeID").Field("value")
		switch r.SpiffeID.Type {
		case MatchExact:
			if _, err := spiffeid.FromString(r.SpiffeID.Value); err != nil {
				verr.Add(vp, "must be a SPIFFE ID such as spiffe://default.mesh.local/workload/web: "+err.Error())
			}
		case MatchPrefix:
			validatePrefix(vp, r.SpiffeID.Value, verr)
		default:
			verr.Add(rp.Field("spiffeID").Field("type"), "must be Exact or Prefix")
		}
	}
	return verr
}

func validatePrefix(p validation.Path, v string, verr *validation.Error) {
	rest, ok := strings.CutPrefix(v, "spiffe://")
	if !ok {
		verr.Add(p, "must start with spiffe://")
		return
	}
	td, _, _ := strings.Cut(rest, "/")
	if _, err := spiffeid.TrustDomainFromString(td); err != nil {
		verr.Add(p, "must start with spiffe://<trust domain>: "+err.Error())
	}
}
