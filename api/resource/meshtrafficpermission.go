package resource

import (
	"fmt"
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
	// ActionAllowWithShadowDeny allows and marks the caller as one a Deny
	// would refuse (Kuma's dry run of a Deny); Kuma form only.
	ActionAllowWithShadowDeny = "AllowWithShadowDeny"
	MatchExact                = "Exact"
	MatchPrefix               = "Prefix"
)

// MeshTrafficPermission allows or denies callers of a service (or of every
// service of the mesh). Each from entry is in one of two forms: ecsmesh's
// SPIFFE-ID form ({spiffeID, action}) or Kuma's canonical form ({targetRef,
// default: {action}}), resolved at every mesh build to the SPIFFE IDs of the
// dataplanes it names. Deny beats Allow (see docs/policies.md).
type MeshTrafficPermission struct {
	Meta
	Spec MeshTrafficPermissionSpec `json:"spec"`
}

// MeshTrafficPermissionSpec is the body of a MeshTrafficPermission.
type MeshTrafficPermissionSpec struct {
	_ unsupported `refused:"rules" why:"Kuma's rules form (allow, deny and allowWithShadowDeny lists of SPIFFE ID matchers) is not implemented; write each matcher as a spec.from entry {spiffeID: {type, value}, action}"`
	// TargetRef is the protected service or the whole mesh (default).
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// From lists the rules.
	From []PermissionRule `json:"from"`
}

// PermissionRule is one from entry: callers matching SpiffeID get Action
// (SPIFFE-ID form), or callers TargetRef names get Default.Action (Kuma's
// form). An entry is in one form, never both.
type PermissionRule struct {
	// SpiffeID and Action are the SPIFFE-ID form.
	SpiffeID *SpiffeIDMatch `json:"spiffeID,omitempty"`
	Action   string         `json:"action,omitempty"`
	// TargetRef and Default are Kuma's form: TargetRef is the callers (Mesh,
	// MeshSubset, MeshService or MeshServiceSubset).
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	Default   *PermissionConf  `json:"default,omitempty"`
}

// PermissionConf is the default of a Kuma-form from entry.
type PermissionConf struct {
	// Action is Allow, Deny or AllowWithShadowDeny.
	Action string `json:"action"`
}

// KumaForm reports whether r is in Kuma's form (targetRef and default).
func (r *PermissionRule) KumaForm() bool { return r.TargetRef != nil || r.Default != nil }

// SpiffeIDMatch matches a caller's SPIFFE ID exactly or by prefix.
type SpiffeIDMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// TopTargetRef returns spec.targetRef, the Mesh when absent.
func (p *MeshTrafficPermission) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Targets reports whether the permission applies to service.
func (p *MeshTrafficPermission) Targets(service string) bool {
	t := p.TopTargetRef()
	switch t.Kind {
	case TargetMesh:
		return true
	case TargetMeshService:
		return t.Name == service
	case TargetMeshSubset:
		return len(t.Tags) == 1 && t.Tags[TagService] == service
	}
	return false
}

// Kinds a MeshTrafficPermission's from[].targetRef may name.
var permissionFromKinds = []string{TargetMesh, TargetMeshSubset, TargetMeshService, TargetMeshServiceSubset}

// Validate implements Object.
func (p *MeshTrafficPermission) Validate() *validation.Error {
	verr := &validation.Error{}
	validateMeta(&p.Meta, ScopeMesh, verr)
	sp := validation.Root().Field("spec")
	if t := p.Spec.TargetRef; t != nil {
		validatePermissionTarget(sp.Field("targetRef"), *t, p.Mesh, verr)
	}
	if len(p.Spec.From) == 0 {
		verr.Add(sp.Field("from"), "must have at least one rule")
	}
	for i := range p.Spec.From {
		r := &p.Spec.From[i]
		rp := sp.Field("from").Index(i)
		if r.KumaForm() {
			validateKumaPermission(rp, r, p.Mesh, verr)
		} else {
			validateSpiffePermission(rp, r, verr)
		}
	}
	return verr
}

// validatePermissionTarget checks the top-level targetRef. Permissions are
// per service (every dataplane of a service admits the same callers), so
// only the kinds that select whole services are accepted.
func validatePermissionTarget(p validation.Path, t PolicyTargetRef, mesh string, verr *validation.Error) {
	const perService = "a MeshTrafficPermission protects whole services in ecsmesh (every dataplane of a service admits the same callers); use kind MeshService with name set to the service's kuma.io/service, or kind Mesh"
	switch t.Kind {
	case TargetDataplane, TargetMeshServiceSubset:
		verr.Add(p.Field("kind"), fmt.Sprintf("%s is not supported here: %s", t.Kind, perService))
		return
	}
	validateTargetRef(p, t, []string{TargetMesh, TargetMeshSubset, TargetMeshService}, mesh, verr)
	if t.Kind == TargetMeshSubset && (len(t.Tags) != 1 || !ValidServiceName(t.Tags[TagService])) {
		verr.Add(p.Field("tags"), "must be exactly {kuma.io/service: <service>} here: "+perService)
	}
}

func validateKumaPermission(rp validation.Path, r *PermissionRule, mesh string, verr *validation.Error) {
	const form = "an entry is either {spiffeID, action} or {targetRef, default}, not both"
	if r.SpiffeID != nil {
		verr.Add(rp.Field("spiffeID"), "must not be set with targetRef or default: "+form)
	}
	if r.Action != "" {
		verr.Add(rp.Field("action"), "must not be set with targetRef or default (set default.action): "+form)
	}
	if r.TargetRef == nil {
		verr.Add(rp.Field("targetRef"), "must be set with default: the callers, of kind "+strings.Join(permissionFromKinds, ", "))
	} else {
		validateTargetRef(rp.Field("targetRef"), *r.TargetRef, permissionFromKinds, mesh, verr)
	}
	if r.Default == nil {
		verr.Add(rp.Field("default"), "must be set with targetRef: {action: Allow, Deny or AllowWithShadowDeny}")
		return
	}
	switch r.Default.Action {
	case ActionAllow, ActionDeny, ActionAllowWithShadowDeny:
	default:
		verr.Add(rp.Field("default").Field("action"), fmt.Sprintf("must be Allow, Deny or AllowWithShadowDeny, got %q", r.Default.Action))
	}
}

func validateSpiffePermission(rp validation.Path, r *PermissionRule, verr *validation.Error) {
	switch r.Action {
	case ActionAllow, ActionDeny:
	default:
		verr.Add(rp.Field("action"), "must be Allow or Deny")
	}
	var m SpiffeIDMatch
	if r.SpiffeID != nil {
		m = *r.SpiffeID
	}
	vp := rp.Field("spiffeID").Field("value")
	switch m.Type {
	case MatchExact:
		if _, err := spiffeid.FromString(m.Value); err != nil {
			verr.Add(vp, "must be a SPIFFE ID such as spiffe://default.mesh.local/workload/web: "+err.Error())
		}
	case MatchPrefix:
		validatePrefix(vp, m.Value, verr)
	default:
		verr.Add(rp.Field("spiffeID").Field("type"), "must be Exact or Prefix")
	}
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
