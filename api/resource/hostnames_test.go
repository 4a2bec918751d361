package resource

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func generator(name, template string, match map[string]string, zoneID string) *HostnameGenerator {
	g := &HostnameGenerator{Meta: Meta{Name: name}, Spec: HostnameGeneratorSpec{Template: template}}
	if match != nil {
		g.Spec.Selector.MeshService = &LabelSelector{MatchLabels: match}
	}
	if zoneID != "" {
		g.Spec.Extension = &HostnameExtension{Type: ExtensionRoute53, Config: &Route53Options{HostedZoneID: zoneID}}
	}
	return g
}

func TestHostnames(t *testing.T) {
	web := Service{Mesh: "default", Name: "Web", Protocol: ProtocolHTTP}
	gens := []*HostnameGenerator{
		generator("b-mesh", "{{ .Name }}.{{ .Mesh }}.mesh", nil, ""),
		generator("a-label", `{{ label "kuma.io/protocol" }}-{{ .DisplayName }}.internal.`, nil, ""),
		generator("c-tcp-only", "{{ .Name }}.tcp", map[string]string{TagProtocol: ProtocolTCP}, ""),
		generator("d-zone", "{{ .Name }}.zone", nil, "/hostedzone/ZONE1"),
		generator("e-dup", "web.svc.example", nil, ""),
		generator("f-broken", `{{ label "team" }}.example`, nil, ""),
	}
	for _, tc := range []struct {
		name, domain, zoneID string
		want                 []string
		wantErrs             []string
	}{
		{"every zone", "svc.example", "",
			[]string{"web.svc.example", "http-web.internal", "web.default.mesh", "web.zone"}, []string{"f-broken"}},
		{"no domain", "", "",
			[]string{"http-web.internal", "web.default.mesh", "web.zone", "web.svc.example"}, []string{"f-broken"}},
		{"zone of the extension", "", "ZONE1",
			[]string{"http-web.internal", "web.default.mesh", "web.zone", "web.svc.example"}, []string{"f-broken"}},
		{"another zone", "", "ZONE2",
			[]string{"http-web.internal", "web.default.mesh", "web.svc.example"}, []string{"f-broken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := Hostnames(tc.domain, tc.zoneID, web, gens)
			if !slices.Equal(got, tc.want) {
				t.Errorf("names %q, want %q", got, tc.want)
			}
			var failed []string
			for _, e := range errs {
				failed = append(failed, e.Generator)
				if e.Service != web || !strings.HasPrefix(e.Error(), "resource: HostnameGenerator "+e.Generator+" for service default/Web: ") ||
					e.Reason() != strings.TrimPrefix(e.Error(), "resource: ") || errors.Unwrap(e) == nil {
					t.Errorf("error %q (reason %q, service %+v)", e.Error(), e.Reason(), e.Service)
				}
			}
			if !slices.Equal(failed, tc.wantErrs) {
				t.Errorf("failed generators %q, want %q", failed, tc.wantErrs)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	if got := NormalizeHostname("Web.Svc.Example."); got != "web.svc.example" {
		t.Errorf("NormalizeHostname = %q", got)
	}
	if got := NormalizeZoneID("/hostedzone/Z123"); got != "Z123" {
		t.Errorf("NormalizeZoneID = %q", got)
	}
}
