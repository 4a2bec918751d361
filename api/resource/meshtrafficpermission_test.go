package resource

import (
	"strings"
	"testing"
)

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
