package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

func match(typ, path, method string, headers int) resource.HTTPRouteMatch {
	m := resource.HTTPRouteMatch{Method: method}
	if typ != "" {
		m.Path = &resource.PathMatch{Type: typ, Value: path}
	}
	for i := 0; i < headers; i++ {
		m.Headers = append(m.Headers, resource.HeaderMatch{Name: fmt.Sprintf("x-%d", i), Value: "1"})
	}
	return m
}

func rule(backend string, ms ...resource.HTTPRouteMatch) resource.HTTPRouteRule {
	return resource.HTTPRouteRule{Matches: ms, Default: resource.HTTPRouteConf{
		BackendRefs: []resource.BackendRef{{Kind: resource.TargetMeshService, Name: backend}},
	}}
}

func route(name string, top *resource.PolicyTargetRef, rules ...resource.HTTPRouteRule) *resource.MeshHTTPRoute {
	return &resource.MeshHTTPRoute{
		Meta: resource.Meta{Type: resource.KindMeshHTTPRoute, Mesh: "default", Name: name},
		Spec: resource.MeshHTTPRouteSpec{TargetRef: top, To: []resource.HTTPRouteTo{
			{TargetRef: resource.PolicyTargetRef{Kind: resource.TargetMeshService, Name: "backend"}, Rules: rules},
		}},
	}
}

// TestHTTPRouteRulesKumaDocs is the merging example of Kuma's
// MeshHTTPRoute docs: rules with equal matches merge (CONF_1 with CONF_3,
// CONF_2 with CONF_4); the more specific route's rules come first.
func TestHTTPRouteRulesKumaDocs(t *testing.T) {
	orders := match(resource.PathExact, "/orders", "GET", 0)
	payments := match(resource.PathExact, "/payments", "POST", 0)
	headers := resource.HTTPRouteFilter{Type: resource.FilterRequestHeaderModifier, RequestHeaderModifier: &resource.HeaderModifier{
		Set: []resource.HeaderKeyValue{{Name: "x-conf", Value: "1"}},
	}}
	r1 := route("route-1", nil, rule("conf-1", orders), rule("conf-2", payments))
	r1.Spec.To[0].Rules[0].Default.Filters = []resource.HTTPRouteFilter{headers}
	r2 := route("route-2", ref(resource.TargetMeshService, "web", nil, nil), rule("conf-3", orders), rule("conf-4", payments))
	dp := dataplane("web-1", nil, map[string]string{resource.TagService: "web"})
	rules, err := HTTPRouteRules(Outbound([]*resource.MeshHTTPRoute{r2, r1}, dp), Service("backend"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, fmt.Sprintf("%s %s -> %s filters=%d from %v",
			r.Matches[0].Method, r.Matches[0].Path.Value, r.Default.BackendRefs[0].Name, len(r.Default.Filters), r.Origins))
	}
	want := []string{
		"GET /orders -> conf-3 filters=1 from [route-1/to[0] route-2/to[0]]",
		"POST /payments -> conf-4 filters=0 from [route-1/to[0] route-2/to[0]]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("merged rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHTTPRouteRulesOrder checks the rule order without equal matches: the
// rules of the route applying last first, in written order, then the
// earlier route's.
func TestHTTPRouteRulesOrder(t *testing.T) {
	a, b, c, d := match(resource.PathPrefix, "/a", "", 0), match(resource.PathPrefix, "/b", "", 0),
		match(resource.PathPrefix, "/c", "", 0), match(resource.PathPrefix, "/d", "", 0)
	low := route("low", nil, rule("a", a), rule("b", b))
	high := route("high", ref(resource.TargetMeshService, "web", nil, nil), rule("c", c), rule("d", d), rule("b2", b))
	dp := dataplane("web-1", nil, map[string]string{resource.TagService: "web"})
	rules, err := HTTPRouteRules(Outbound([]*resource.MeshHTTPRoute{low, high}, dp), Service("backend"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.Default.BackendRefs[0].Name)
	}
	if g := strings.Join(got, " "); g != "c d b2 a" {
		t.Errorf("rules %s, want c d b2 a", g)
	}
	if rules, _ := HTTPRouteRules(Outbound([]*resource.MeshHTTPRoute{low, high}, dp), Service("other")); len(rules) != 0 {
		t.Errorf("%d rules for a service no route names", len(rules))
	}
}

func TestSortRoutes(t *testing.T) {
	rules := []HTTPRouteRule{
		{HTTPRouteRule: rule("none", match("", "", "", 0))},
		{HTTPRouteRule: rule("regex", match(resource.PathRegularExpression, "^/a.*$", "", 0))},
		{HTTPRouteRule: rule("short-prefix", match(resource.PathPrefix, "/a", "", 0), match(resource.PathPrefix, "/a", "GET", 0))},
		{HTTPRouteRule: rule("long-prefix", match(resource.PathPrefix, "/a/b", "", 0))},
		{HTTPRouteRule: rule("headers", match(resource.PathPrefix, "/a", "", 2))},
		{HTTPRouteRule: rule("exact", match(resource.PathExact, "/a", "", 0))},
		{HTTPRouteRule: rule("method-only", match("", "", "POST", 0))},
	}
	var got []string
	for _, r := range SortRoutes(rules) {
		name := r.Conf.BackendRefs[0].Name
		if r.Match.Method != "" {
			name += "+" + r.Match.Method
		}
		got = append(got, name)
	}
	want := "exact long-prefix short-prefix+GET headers short-prefix regex method-only+POST none"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("routes %s\nwant   %s", g, want)
	}
}
