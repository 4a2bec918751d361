package generate

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/filter"
)

const (
	apiID   = "spiffe://default.mesh.local/workload/api"
	webID   = "spiffe://default.mesh.local/workload/web"
	redisID = "spiffe://default.mesh.local/workload/redis"
)

// filterConfig returns the decoded filter configuration inside r.
func filterConfig(t *testing.T, r *Resource) *filter.Config {
	t.Helper()
	a, err := r.Packed()
	if err != nil {
		t.Fatal(err)
	}
	var cfg *filter.Config
	walkAnys(t, a, func(m proto.Message) {
		if sv, ok := m.(*wrapperspb.StringValue); ok {
			if cfg, err = filter.Decode([]byte(sv.GetValue())); err != nil {
				t.Fatalf("filter config: %v\n%s", err, sv.GetValue())
			}
			if _, err := filter.Compile(cfg); err != nil {
				t.Fatalf("filter config: %v\n%s", err, sv.GetValue())
			}
		}
	})
	if cfg == nil {
		t.Fatal("no filter configuration")
	}
	return cfg
}

func buildNode(t *testing.T, in *Input, name string, bind bool) (*Mesh, *Node) {
	t.Helper()
	b := NewBuilder()
	m, err := b.Mesh(in)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.Node(m, m.Dataplanes[name], bind)
	if err != nil {
		t.Fatal(err)
	}
	return m, n
}

// TestOutboundRouteTokens: each route that attaches a token carries the
// token minted for its destination only; no trust-domain-wide token is
// delivered.
func TestOutboundRouteTokens(t *testing.T) {
	m, n := buildNode(t, smallMesh(t, resource.FilterTypeWasm), "web-1", true)
	exp := time.Unix(1767225600, 0)
	toks := RouteTokens{apiID: {Value: "a.api.sig", ExpiresAt: exp}, webID: {Value: "a.web.sig", ExpiresAt: exp}, redisID: {Value: "a.redis.sig", ExpiresAt: exp}}
	cfg := filterConfig(t, OutboundFilterConfig(m, n, toks))
	if cfg.Identity == nil || cfg.Identity.SpiffeID != webID || cfg.Identity.Token != "" {
		t.Fatalf("identity = %+v, want web's SPIFFE ID and no trust-domain-wide token", cfg.Identity)
	}
	byCluster := map[string]int{}
	for _, r := range cfg.Routes {
		byCluster[r.Cluster]++
		switch {
		case r.AttachToken && r.SpiffeID != "":
			if want := toks[r.SpiffeID].Value; r.Token != want || r.TokenExpiresAt != exp.Unix() {
				t.Errorf("route %s (%s): token %q exp %d, want %q", r.Cluster, r.SpiffeID, r.Token, r.TokenExpiresAt, want)
			}
		case r.Token != "":
			t.Errorf("route %s carries a token without a single destination identity", r.Cluster)
		}
	}
	// api: the mesh route and the explicit outbound; web: the mesh route.
	if byCluster["api"] != 2 || byCluster["web"] != 1 {
		t.Fatalf("routes by cluster = %v", byCluster)
	}

	// Without tokens the shared routes are sent as they are.
	bare := filterConfig(t, OutboundFilterConfig(m, n, nil))
	for _, r := range bare.Routes {
		if r.Token != "" {
			t.Fatalf("route %s has a token", r.Cluster)
		}
	}
	// A renewed token is a new version.
	v1 := OutboundFilterConfig(m, n, toks).Version
	renewed := RouteTokens{apiID: {Value: "b.api.sig", ExpiresAt: exp}, webID: toks[webID], redisID: toks[redisID]}
	if v2 := OutboundFilterConfig(m, n, renewed).Version; v1 == v2 || v1 != OutboundFilterConfig(m, n, toks).Version {
		t.Fatal("the version does not follow the tokens")
	}
}

func TestTokenAudiences(t *testing.T) {
	in := smallMesh(t, resource.FilterTypeWasm)
	m, bound := buildNode(t, in, "web-1", true)
	_, unbound := buildNode(t, in, "web-1", false)
	for _, tc := range []struct {
		name      string
		n         *Node
		max       int
		want      []string
		truncated bool
	}{
		// api is an explicit outbound; web is reachable only through the
		// VIP listeners; redis is TCP (no filter, no token).
		{"binds every VIP", bound, 10, []string{apiID, webID}, false},
		{"explicit outbounds only", unbound, 10, []string{apiID}, false},
		{"capped", bound, 1, []string{apiID}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, truncated := TokenAudiences(m, tc.n, tc.max)
			if !slices.Equal(got, tc.want) || truncated != tc.truncated {
				t.Fatalf("TokenAudiences = %v, %v; want %v, %v", got, truncated, tc.want, tc.truncated)
			}
		})
	}

	// A service served under two identities: no single audience, no token.
	in.Identities = []*resource.MeshIdentity{decode[*resource.MeshIdentity](t, "MeshIdentity",
		`{"mesh":"default","name":"per-dp","spec":{"selector":{"dataplane":{"matchLabels":{"kuma.io/service":"api"}}},"spiffeID":{"path":"/dp/{{ label \"id\" }}"}}}`)}
	for _, dp := range in.Dataplanes {
		if strings.HasPrefix(dp.Name, "api-") {
			dp.Labels = map[string]string{"kuma.io/service": "api", "id": dp.Name}
		}
	}
	m, n := buildNode(t, in, "web-1", true)
	if got, _ := TokenAudiences(m, n, 10); !slices.Equal(got, []string{webID}) {
		t.Fatalf("TokenAudiences with a two-identity api = %v, want web only", got)
	}
}

// TestInboundFilterScopesJWTSVIDs: the inbound filter gets the mesh's
// JWKS and the issuer to require.
func TestInboundFilterScopesJWTSVIDs(t *testing.T) {
	in := smallMesh(t, resource.FilterTypeWasm)
	_, n := buildNode(t, in, "web-1", false)
	cfg := filterConfig(t, n.Extensions[0])
	if cfg.Inbound == nil || cfg.Inbound.JWTIssuer != in.JWTIssuer || string(cfg.Inbound.JWKS) != string(in.JWKS) || len(cfg.Inbound.Audiences) != 0 {
		t.Fatalf("inbound = %+v", cfg.Inbound)
	}
	if cfg.Identity.SpiffeID != webID {
		t.Fatalf("identity = %+v (the filter's default audience)", cfg.Identity)
	}
}

// TestForeignTrustDomainIdentity: a MeshIdentity rendering another trust
// domain (here from a label the sidecar wrote) gives the dataplane no
// config, and its identity is not among the SANs clients accept.
func TestForeignTrustDomainIdentity(t *testing.T) {
	for _, td := range []string{"other.mesh.local", `{{ label "td" }}`} {
		t.Run(td, func(t *testing.T) {
			in := smallMesh(t, resource.FilterTypeWasm)
			in.Identities = []*resource.MeshIdentity{decode[*resource.MeshIdentity](t, "MeshIdentity",
				`{"mesh":"default","name":"elsewhere","spec":{"selector":{"dataplane":{"matchLabels":{"team":"x"}}},"spiffeID":{"trustDomain":"`+strings.ReplaceAll(td, `"`, `\"`)+`"}}}`)}
			for _, dp := range in.Dataplanes {
				if dp.Name == "api-1" {
					dp.Labels = map[string]string{"team": "x", "td": "partner.example"}
				}
			}
			b := NewBuilder()
			m, err := b.Mesh(in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Node(m, m.Dataplanes["api-1"], false); err == nil || !strings.Contains(err.Error(), "outside the mesh's trust domain") {
				t.Fatalf("Node(api-1) err = %v", err)
			}
			if ids := m.Services["api"].SpiffeIDs; len(ids) != 1 || ids[0] != apiID {
				t.Fatalf("api's SANs = %v, want api-2's own only", ids)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"h.p.s", "a\"b\\c\n<", ""} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("appendJSONString(%q) = %s (%v)", s, got, err)
		}
	}
}
