package resource

import (
	"fmt"
	"slices"
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
	// Rules (SPIFFE-ID form only, an ecsmesh extension) limit the entry to
	// the HTTP requests one of them matches: the caller's other requests
	// are decided as if the entry were absent.
	Rules []PermissionL7Rule `json:"rules,omitzero"`
}

// PermissionL7Rule matches requests by method and path.
type PermissionL7Rule struct {
	Match PermissionL7Match `json:"match"`
}

// PermissionL7Match: any one method (upper case) and any one path; an
// empty list matches anything, but a match sets at least one.
type PermissionL7Match struct {
	Methods []string         `json:"methods,omitzero"`
	Paths   []PermissionPath `json:"paths,omitzero"`
}

// PermissionPath is an Exact path, or a Prefix of whole segments ("/admin"
// matches /admin and /admin/x, not /administrator).
type PermissionPath struct {
	Type  string `json:"type"`
	Value string `json:"value"`
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
			if r.Rules != nil {
				verr.Add(rp.Field("rules"), "rules are supported on entries of the spiffeID form only (write {spiffeID, action, rules})")
			}
		} else {
			validateSpiffePermission(rp, r, verr)
			validateL7Rules(rp.Field("rules"), r.Rules, verr)
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

func validateL7Rules(p validation.Path, rules []PermissionL7Rule, verr *validation.Error) {
	if rules != nil && len(rules) == 0 {
		verr.Add(p, "must list at least one rule when set")
	}
	for i, r := range rules {
		mp := p.Index(i).Field("match")
		if len(r.Match.Methods) == 0 && len(r.Match.Paths) == 0 {
			verr.Add(mp, "must set methods, paths or both")
		}
		for j, m := range r.Match.Methods {
			if !slices.Contains(httpMethods, m) {
				verr.Add(mp.Field("methods").Index(j), fmt.Sprintf("must be one of %s, got %q", strings.Join(httpMethods, ", "), m))
			}
		}
		for j, pm := range r.Match.Paths {
			pp := mp.Field("paths").Index(j)
			if pm.Type != MatchExact && pm.Type != MatchPrefix {
				verr.Add(pp.Field("type"), fmt.Sprintf("must be Exact or Prefix, got %q", pm.Type))
			}
			if !canonicalRequestPath(pm.Value) {
				verr.Add(pp.Field("value"), fmt.Sprintf("must be an absolute path without query, '.' or '..' segments, '//' or percent-encoding, got %q", pm.Value))
			}
		}
	}
}

// canonicalRequestPath reports whether p is an absolute path in the one
// spelling the filter compares requests with (it refuses other spellings).
func canonicalRequestPath(p string) bool {
	if p == "" || p[0] != '/' || strings.ContainsAny(p, "%\\?#") || strings.Contains(p, "//") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
