package xds

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

func connectTimeout(c *adsclient.Client, cluster string) time.Duration {
	a := c.Resources(resourcev3.ClusterType)[cluster]
	if a == nil {
		return -1
	}
	var cl clusterv3.Cluster
	if a.UnmarshalTo(&cl) != nil {
		return -1
	}
	return cl.GetConnectTimeout().AsDuration()
}

// TestPoliciesAppliedLive: a MeshTimeout stored while a sidecar is
// connected reaches its stream, a Dataplane-level one overrides it for
// that dataplane only, inspect shows where each value came from, and
// deleting the policies restores the defaults.
func TestPoliciesAppliedLive(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			h := newHarness(t, nil)
			h.dataplane("web-1", "10.0.0.1", "web", "http", "")
			h.dataplane("web-2", "10.0.0.3", "web", "http", "")
			h.dataplane("api-1", "10.0.0.2", "api", "http", "")
			md := map[string]any{envoybootstrap.MetaBindOutbounds: true}
			web1 := h.connect("default.web-1", h.token("default", "web-1"), delta, md)
			web2 := h.connect("default.web-2", h.token("default", "web-2"), delta, md)
			for _, w := range []*running{web1, web2} {
				w.waitFor(t, "default connect timeout", func(c *adsclient.Client) bool { return connectTimeout(c, "api") == 5*time.Second })
			}

			h.apply(resource.KindMeshTimeout, "default", "mesh-default", `{"type":"MeshTimeout","mesh":"default","name":"mesh-default",
			  "spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"connectionTimeout":"2s"}}]}}`)
			for _, w := range []*running{web1, web2} {
				w.waitFor(t, "Mesh-wide connect timeout", func(c *adsclient.Client) bool {
					return connectTimeout(c, "api") == 2*time.Second && c.Consistent() == nil
				})
			}
			h.apply(resource.KindMeshTimeout, "default", "web-1-only", `{"type":"MeshTimeout","mesh":"default","name":"web-1-only",
			  "spec":{"targetRef":{"kind":"Dataplane","name":"web-1"},"to":[{"targetRef":{"kind":"MeshService","name":"api"},"default":{"connectionTimeout":"1s"}}]}}`)
			web1.waitFor(t, "Dataplane-level connect timeout", func(c *adsclient.Client) bool { return connectTimeout(c, "api") == time.Second })
			time.Sleep(200 * time.Millisecond)
			if got := connectTimeout(web2.Client, "api"); got != 2*time.Second {
				t.Fatalf("web-2 got %v, a policy for web-1 only must not reach it", got)
			}

			out, err := h.srv.InspectDataplane(context.Background(), "default", "web-1")
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Policies struct {
					Outbound map[string]struct {
						Timeout struct {
							ConnectionTimeout string `json:"connectionTimeout"`
						} `json:"timeout"`
						Origins map[string][]string `json:"origins"`
					} `json:"outbound"`
				} `json:"policies"`
			}
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			api := doc.Policies.Outbound["api"]
			if api.Timeout.ConnectionTimeout != "1s" || strings.Join(api.Origins["MeshTimeout"], ",") != "mesh-default/to[0],web-1-only/to[0]" {
				t.Fatalf("inspect policies: %+v\n%s", doc.Policies, out)
			}

			for _, name := range []string{"mesh-default", "web-1-only"} {
				if err := store.DeleteRecord(context.Background(), h.st, store.Key{Kind: resource.KindMeshTimeout, Mesh: "default", Name: name}, 0); err != nil {
					t.Fatal(err)
				}
			}
			for _, w := range []*running{web1, web2} {
				w.waitFor(t, "defaults restored", func(c *adsclient.Client) bool { return connectTimeout(c, "api") == 5*time.Second })
				if _, nacks, err := w.Counts(); nacks != 0 {
					t.Fatalf("NACKs: %d (%v)", nacks, err)
				}
			}
		})
	}
}
