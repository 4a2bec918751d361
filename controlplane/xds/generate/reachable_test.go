package generate

import (
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

func names(rs []*Resource) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return strings.Join(out, ",")
}

// TestReachableServices: a Dataplane listing reachableServices gets
// configuration for those, its explicit outbounds and the backends of
// their routes, nothing else; with auto reachability, the services whose
// permissions admit it.
func TestReachableServices(t *testing.T) {
	t.Run("listed", func(t *testing.T) {
		in := withPolicies(t, httpRoutes)
		for i, dp := range in.Dataplanes {
			if dp.Name == "web-2" {
				c := *dp
				c.Networking.TransparentProxying = &resource.TransparentProxying{ReachableServices: []string{"web"}}
				in.Dataplanes[i] = &c
			}
		}
		b := NewBuilder()
		m, err := b.Mesh(in)
		if err != nil {
			t.Fatal(err)
		}
		n, err := b.Node(m, m.Dataplanes["web-2"], true)
		if err != nil {
			t.Fatal(err)
		}
		// web, its subset, and api: a backend of web's /api route.
		if got := names(m.NodeClusters(n)); got != "api,web,web~version=v2" {
			t.Errorf("clusters %s", got)
		}
		if got := names(m.NodeEndpoints(n)); got != "api,web,web~version=v2" {
			t.Errorf("endpoints %s", got)
		}
		if got := names(m.NodeVIPListeners(n)); got != "outbound:127.1.0.1:8080,outbound:127.1.0.2:8080" {
			t.Errorf("VIP listeners %s", got)
		}
		if m.NodeCluster(n, "redis") != nil || m.NodeEndpoint(n, "redis") != nil || m.NodeVIPListener(n, "outbound:127.1.0.3:8080") != nil {
			t.Errorf("redis is served by name to a dataplane that may not reach it")
		}
		a, err := OutboundFilterConfig(m, n, testTokens(m, n)).Packed()
		if err != nil {
			t.Fatal(err)
		}
		body := string(a.GetValue())
		if !strings.Contains(body, `"cluster":"web"`) || strings.Contains(body, `"cluster":"redis"`) {
			t.Errorf("outbound filter routes: %s", body)
		}
		checkSnapshot(t, snapshotOf(t, b, m, "web-2", true))
		// web-1 lists nothing: everything.
		n1, _ := b.Node(m, m.Dataplanes["web-1"], true)
		if got := names(m.NodeClusters(n1)); got != "api,redis,web,web~version=v2" {
			t.Errorf("web-1 clusters %s", got)
		}
	})
	t.Run("auto", func(t *testing.T) {
		in := withPolicies(t, "")
		in.AutoReachable = true
		b := NewBuilder()
		m, err := b.Mesh(in)
		if err != nil {
			t.Fatal(err)
		}
		// redis admits only workload web; api admits the workload/ prefix
		// but denies batch; web has no permission: the mesh default.
		for node, want := range map[string]string{"web-1": "api,redis,web", "api-1": "api,web"} {
			n, err := b.Node(m, m.Dataplanes[node], true)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(m.NodeClusters(n)); got != want {
				t.Errorf("%s (%s) reaches %s, want %s", node, n.SpiffeID, got, want)
			}
		}
	})
}
