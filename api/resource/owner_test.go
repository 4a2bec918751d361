package resource

import "testing"

// An owner in input is the caller's word, not the control plane's: decoding
// drops it, so neither apply nor /bootstrap can claim another role's
// Dataplane by writing its owner.
func TestDecodeDropsOwner(t *testing.T) {
	in := `{"type":"Dataplane","mesh":"default","name":"redis-1",
	 "owner":{"roleArn":"arn:aws:iam::123456789012:role/redis","roleId":"AROAREDIS","spiffeId":"spiffe://default.mesh.local/workload/redis","proxyType":"dataplane"},
	 "networking":{"address":"10.0.0.1","inbound":[{"port":15000,"tags":{"kuma.io/service":"redis"}}]}}`
	obj, _, err := DecodeOne([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	dp := obj.(*Dataplane)
	if dp.Owner != nil {
		t.Fatalf("owner read from input: %+v", dp.Owner)
	}
	if dp.OwnedBy("AROAREDIS") || dp.ProxyType() != ProxyTypeDataplane {
		t.Fatalf("operator Dataplane: OwnedBy=%v ProxyType=%q", dp.OwnedBy("AROAREDIS"), dp.ProxyType())
	}
}

func TestOwnedBy(t *testing.T) {
	dp := &Dataplane{Owner: &Owner{RoleID: "AROAWEB", ProxyType: ProxyTypeEgress}}
	for _, tc := range []struct {
		id   string
		want bool
	}{{"AROAWEB", true}, {"AROAREDIS", false}, {"", false}} {
		if got := dp.OwnedBy(tc.id); got != tc.want {
			t.Errorf("OwnedBy(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if dp.ProxyType() != ProxyTypeEgress {
		t.Errorf("ProxyType = %q", dp.ProxyType())
	}
}

func TestIdentityLabelKeys(t *testing.T) {
	tests := []struct {
		name string
		mi   *MeshIdentity
		want string
	}{
		{"nil", nil, ""},
		{"default path", &MeshIdentity{}, ""},
		{"selector", &MeshIdentity{Spec: MeshIdentitySpec{Selector: MeshIdentitySelector{Dataplane: &LabelSelector{MatchLabels: map[string]string{"team": "a", "env": "b"}}}}}, "env,team"},
		{"path label", &MeshIdentity{Spec: MeshIdentitySpec{SpiffeID: SpiffeIDTemplate{Path: `/t/{{ label "team" }}/{{ .Service }}`}}}, "team"},
		{"trust domain label, raw string, pipeline", &MeshIdentity{Spec: MeshIdentitySpec{SpiffeID: SpiffeIDTemplate{
			TrustDomain: "{{ label `zone` }}.mesh.local", Path: `{{ if true }}/{{ label "a" | printf "%s" }}{{ end }}`}}}, "a,zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			for i, k := range tt.mi.LabelKeys() {
				if i > 0 {
					got += ","
				}
				got += k
			}
			if got != tt.want {
				t.Fatalf("LabelKeys = %q, want %q", got, tt.want)
			}
		})
	}
}
