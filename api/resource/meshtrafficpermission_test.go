package resource

import (
	"strings"
	"testing"
)

// invalidPermissions are refused MeshTrafficPermissions with their exact
// violations (run by TestPolicyInvalid, seeds of FuzzDecodePolicies).
var invalidPermissions = []struct {
	name string
	in   string
	want []string
}{
	// Each from entry is {spiffeID, action} or {targetRef, default}, never
	// both; only whole services are protected.
	{"permission entry mixing both forms", head("MeshTrafficPermission") + `
  targetRef: {kind: MeshService, name: api}
  from:
  - spiffeID: {type: Exact, value: "spiffe://default.mesh.local/workload/web"}
    action: Allow
    targetRef: {kind: MeshService, name: web}
    default: {action: Allow}`, []string{
		"spec.from[0].spiffeID: must not be set with targetRef or default: an entry is either {spiffeID, action} or {targetRef, default}, not both",
		"spec.from[0].action: must not be set with targetRef or default (set default.action): an entry is either {spiffeID, action} or {targetRef, default}, not both",
	}},
	{"permission Kuma entries incomplete or wrong", head("MeshTrafficPermission") + `
  from:
  - targetRef: {kind: MeshService, name: web}
  - default: {action: Allow}
  - targetRef: {kind: Mesh}
    default: {action: ALLOW}
  - targetRef: {kind: Dataplane, name: web-1}
    default: {action: Deny}
  - targetRef: {kind: MeshSubset, tags: {team: ""}}
    default: {}
  - targetRef: {kind: MeshService, name: web, namespace: prod}
    default: {action: Allow, log: true}`, []string{
		"spec.from[5].default.log: unknown field; check its spelling against docs/policies.md",
		"spec.from[5].targetRef.namespace: not supported by ecsmesh: Kubernetes namespaces do not exist on ECS; name the service by its kuma.io/service",
		"spec.from[0].default: must be set with targetRef: {action: Allow, Deny or AllowWithShadowDeny}",
		"spec.from[1].targetRef: must be set with default: the callers, of kind Mesh, MeshSubset, MeshService, MeshServiceSubset",
		`spec.from[2].default.action: must be Allow, Deny or AllowWithShadowDeny, got "ALLOW"`,
		`spec.from[3].targetRef.kind: must be one of Mesh, MeshSubset, MeshService, MeshServiceSubset here, got "Dataplane"`,
		`spec.from[4].targetRef.tags["team"]: value must not be empty`,
		`spec.from[4].default.action: must be Allow, Deny or AllowWithShadowDeny, got ""`,
	}},
	{"permission for some dataplanes of a service (Kuma docs: payments allows orders, by Dataplane labels)", head("MeshTrafficPermission") + `
  targetRef:
    kind: Dataplane
    labels: {app: payments}
  from:
  - targetRef:
      kind: MeshSubset
      tags: {kuma.io/service: orders}
    default: {action: Allow}`, []string{
		"spec.targetRef.kind: Dataplane is not supported here: a MeshTrafficPermission protects whole services in ecsmesh (every dataplane of a service admits the same callers); use kind MeshService with name set to the service's kuma.io/service, or kind Mesh",
	}},
	{"permission for a subset of inbounds", head("MeshTrafficPermission") + `
  targetRef: {kind: MeshSubset, tags: {app: payments}}
  from:
  - targetRef: {kind: Mesh}
    default: {action: Allow}
---
` + head("MeshTrafficPermission") + `
  targetRef: {kind: MeshServiceSubset, name: payments, tags: {version: v2}}
  from:
  - targetRef: {kind: Mesh}
    default: {action: Allow}`, []string{
		"document[0].spec.targetRef.tags: must be exactly {kuma.io/service: <service>} here: a MeshTrafficPermission protects whole services in ecsmesh (every dataplane of a service admits the same callers); use kind MeshService with name set to the service's kuma.io/service, or kind Mesh",
		"document[1].spec.targetRef.kind: MeshServiceSubset is not supported here: a MeshTrafficPermission protects whole services in ecsmesh (every dataplane of a service admits the same callers); use kind MeshService with name set to the service's kuma.io/service, or kind Mesh",
	}},
	{"permission in Kuma's rules form (Kuma docs: exclude a namespace from a broader allow)", head("MeshTrafficPermission") + `
  targetRef: {kind: Mesh}
  rules:
  - default:
      deny:
      - spiffeID: {type: Prefix, value: "spiffe://default.zone-1.mesh.local/ns/malicious/sa"}
      allow:
      - spiffeID: {type: Prefix, value: "spiffe://default.zone-1.mesh.local"}`, []string{
		"spec.rules: not supported by ecsmesh: Kuma's rules form (allow, deny and allowWithShadowDeny lists of SPIFFE ID matchers) is not implemented; write each matcher as a spec.from entry {spiffeID: {type, value}, action}",
		"spec.from: must have at least one rule",
	}},
}

// TestPermissionTargets: which services a permission protects, by its
// spec.targetRef.
func TestPermissionTargets(t *testing.T) {
	tests := []struct {
		name string
		ref  *PolicyTargetRef
		svc  string
		want bool
	}{
		{"absent is the Mesh", nil, "api", true},
		{"Mesh", &PolicyTargetRef{Kind: TargetMesh}, "api", true},
		{"MeshService same", &PolicyTargetRef{Kind: TargetMeshService, Name: "api"}, "api", true},
		{"MeshService other", &PolicyTargetRef{Kind: TargetMeshService, Name: "api"}, "web", false},
		{"MeshSubset by service", &PolicyTargetRef{Kind: TargetMeshSubset, Tags: map[string]string{TagService: "api"}}, "api", true},
		{"MeshSubset by service, other", &PolicyTargetRef{Kind: TargetMeshSubset, Tags: map[string]string{TagService: "api"}}, "web", false},
		{"MeshSubset with more tags (refused by Validate) protects nothing", &PolicyTargetRef{Kind: TargetMeshSubset, Tags: map[string]string{TagService: "api", "version": "v2"}}, "api", false},
		{"Dataplane (refused by Validate) protects nothing", &PolicyTargetRef{Kind: TargetDataplane}, "api", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &MeshTrafficPermission{Spec: MeshTrafficPermissionSpec{TargetRef: tt.ref}}
			if got := p.Targets(tt.svc); got != tt.want {
				t.Errorf("Targets(%q) = %v, want %v", tt.svc, got, tt.want)
			}
		})
	}
}

// TestPermissionValidateAlone checks Validate on permissions built in Go,
// as the manager calls it: an empty spiffeID next to a Kuma entry is still
// both forms.
func TestPermissionValidateAlone(t *testing.T) {
	p := &MeshTrafficPermission{Meta: Meta{Type: KindMeshTrafficPermission, Mesh: "default", Name: "p"}}
	p.Spec.From = []PermissionRule{{TargetRef: &PolicyTargetRef{Kind: TargetMeshService, Name: "web"}, Default: &PermissionConf{Action: ActionAllowWithShadowDeny}}}
	if v := p.Validate(); !v.Empty() {
		t.Fatalf("valid Kuma-form permission: %v", v)
	}
	p.Spec.From[0].SpiffeID = &SpiffeIDMatch{}
	v := p.Validate()
	if v.Empty() || !strings.Contains(v.Error(), "spec.from[0].spiffeID: must not be set") {
		t.Errorf("both forms: %v", v)
	}
	p.Spec.From = []PermissionRule{{Action: ActionAllowWithShadowDeny, SpiffeID: &SpiffeIDMatch{Type: MatchPrefix, Value: "spiffe://default.mesh.local/"}}}
	if v := p.Validate(); v.Empty() || !strings.Contains(v.Error(), "spec.from[0].action: must be Allow or Deny") {
		t.Errorf("AllowWithShadowDeny in the SPIFFE-ID form: %v", v)
	}
}

func TestPermissionL7Rules(t *testing.T) {
	ok := `{"type":"MeshTrafficPermission","mesh":"default","name":"api-admin","spec":{"targetRef":{"kind":"MeshService","name":"api"},"from":[
	  {"spiffeID":{"type":"Prefix","value":"spiffe://default.mesh.local/"},"action":"Deny","rules":[{"match":{"paths":[{"type":"Prefix","value":"/admin"}]}}]}]}}`
	obj, _, err := DecodeOne([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if r := obj.(*MeshTrafficPermission).Spec.From[0].Rules; len(r) != 1 || r[0].Match.Paths[0].Value != "/admin" {
		t.Fatalf("rules %+v", r)
	}
	bad := `{"type":"MeshTrafficPermission","mesh":"default","name":"p","spec":{"targetRef":{"kind":"MeshService","name":"api"},"from":[
	  {"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/web"},"action":"Deny","rules":[{"match":{}},{"match":{"methods":["get"],"paths":[{"type":"Regex","value":"/a/../b"}]}},{"match":{"verbs":["GET"]}}]},
	  {"targetRef":{"kind":"Mesh"},"default":{"action":"Allow"},"rules":[{"match":{"methods":["GET"]}}]}]}}`
	_, _, err = DecodeOne([]byte(bad))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"spec.from[0].rules[0].match: must set methods, paths or both",
		`spec.from[0].rules[1].match.methods[0]: must be one of`,
		`spec.from[0].rules[1].match.paths[0].type: must be Exact or Prefix, got "Regex"`,
		`spec.from[0].rules[1].match.paths[0].value: must be an absolute path`,
		"spec.from[0].rules[2].match.verbs: unknown field",
		"spec.from[1].rules: rules are supported on entries of the spiffeID form only",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
