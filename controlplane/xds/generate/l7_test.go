package generate

import (
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

// TestL7PermissionRules: rules reach the inbound filter of an HTTP
// service; a TCP service, whose connections have no method or path, takes
// a Deny with rules as a Deny and ignores an Allow with rules.
func TestL7PermissionRules(t *testing.T) {
	in := smallMesh(t, resource.FilterTypeWasm)
	rules := `"rules":[{"match":{"methods":["GET"],"paths":[{"type":"Prefix","value":"/admin"}]}}]`
	in.Permissions = []*resource.MeshTrafficPermission{
		decode[*resource.MeshTrafficPermission](t, "MeshTrafficPermission", `{"mesh":"default","name":"web-admin","spec":{"targetRef":{"kind":"MeshService","name":"web"},"from":[
		  {"spiffeID":{"type":"Prefix","value":"spiffe://default.mesh.local/"},"action":"Deny",`+rules+`}]}}`),
		decode[*resource.MeshTrafficPermission](t, "MeshTrafficPermission", `{"mesh":"default","name":"redis","spec":{"targetRef":{"kind":"MeshService","name":"redis"},"from":[
		  {"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/web"},"action":"Deny",`+rules+`},
		  {"spiffeID":{"type":"Exact","value":"spiffe://default.mesh.local/workload/api"},"action":"Allow",`+rules+`}]}}`),
	}
	b := NewBuilder()
	m, err := b.Mesh(in)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshotOf(t, b, m, "web-1", false)
	checkSnapshot(t, s)
	var cfg string
	for _, r := range s[resourcev3.ExtensionConfigType] {
		if strings.HasPrefix(r.Name, InboundFilterPrefix) {
			a, _ := r.Packed()
			cfg = string(a.GetValue())
		}
	}
	if !strings.Contains(cfg, `"rules":[{"match":{"methods":["GET"],"paths":[{"type":"Prefix","value":"/admin"}]}}]`) {
		t.Errorf("web's inbound filter config lacks the rules: %s", cfg)
	}
	body := cfg[strings.Index(cfg, "{"):]
	body = body[:strings.LastIndex(body, "}")+1]
	if c, err := filter.Parse([]byte(body)); err != nil || !c.NeedsRequestLine() {
		t.Errorf("the filter must accept the rules and read the request line: %v", err)
	}
	if h := listenerHCM(t, s, "inbound:10.0.1.10:15000"); !h.GetNormalizePath().GetValue() || !h.GetMergeSlashes() {
		t.Errorf("inbound HCM must normalize paths before the filter matches them")
	}

	rs := snapshotOf(t, b, m, "redis-1", false)
	l := unpack(t, rs, resourcev3.ListenerType, "inbound:10.0.1.30:16379", &listenerv3.Listener{})
	var deny, allow string
	for _, f := range l.GetFilterChains()[0].GetFilters() {
		if f.GetName() != "envoy.filters.network.rbac" {
			continue
		}
		r := &rbacv3.RBAC{}
		if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(r.GetStatPrefix(), "deny_") {
			deny = r.GetRules().String()
		} else {
			allow = r.GetRules().String()
		}
	}
	if !strings.Contains(deny, "workload/web") || strings.Contains(allow, "workload/api") {
		t.Errorf("redis RBAC: deny %s; allow %s: a Deny with rules must deny, an Allow with rules must not allow", deny, allow)
	}
}
