package xds

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

// filterJSON returns the JSON configuration of the ECDS filter name the
// client holds ("" when absent).
func filterJSON(t *testing.T, c *adsclient.Client, name string) string {
	t.Helper()
	a := c.Resources(resourcev3.ExtensionConfigType)[name]
	if a == nil {
		return ""
	}
	var ext corev3.TypedExtensionConfig
	if err := a.UnmarshalTo(&ext); err != nil {
		t.Fatal(err)
	}
	var w wasmfilterv3.Wasm
	if err := ext.GetTypedConfig().UnmarshalTo(&w); err != nil {
		t.Fatal(err)
	}
	var sv wrapperspb.StringValue
	if err := w.GetConfig().GetConfiguration().UnmarshalTo(&sv); err != nil {
		t.Fatal(err)
	}
	return sv.GetValue()
}

func decodeFilter(t *testing.T, js string) *filter.Config {
	t.Helper()
	cfg, err := filter.Decode([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func jwksKIDs(t *testing.T, doc []byte) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}

const (
	webSID = "spiffe://default.mesh.local/workload/web"
	apiSID = "spiffe://default.mesh.local/workload/api"
)

// TestJWTSVIDsBoundToDestination: the token a dataplane attaches on a
// route is minted for that destination only (aud = its SPIFFE ID, iss =
// the CP's issuer), so the callee cannot replay it to a third service;
// replicas of one identity share the tokens.
func TestJWTSVIDsBoundToDestination(t *testing.T) {
	h := newHarness(t, nil)
	h.dataplane("web-1", "10.0.0.1", "web", "http", "")
	h.dataplane("web-2", "10.0.0.4", "web", "http", "")
	h.dataplane("api-1", "10.0.0.2", "api", "http", "")
	h.dataplane("billing-1", "10.0.0.3", "billing", "http", "")
	bind := map[string]any{envoybootstrap.MetaBindOutbounds: true}
	web := h.connect("default.web-1", h.token("default", "web-1"), false, bind)
	web2 := h.connect("default.web-2", h.token("default", "web-2"), false, bind)
	billing := h.connect("default.billing-1", h.token("default", "billing-1"), false, nil)
	withTokens := func(c *adsclient.Client) bool {
		js := filterJSON(t, c, generate.OutboundFilter)
		return c.Consistent() == nil && strings.Count(js, `"token":`) == 3
	}
	web.waitFor(t, "a token on each route", withTokens)
	web2.waitFor(t, "a token on each route", withTokens)
	billing.waitFor(t, "inbound filter", func(c *adsclient.Client) bool {
		return filterJSON(t, c, generate.InboundFilterPrefix+"15000") != ""
	})

	doc, err := h.tokens.MeshJWKS(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := jwtbundle.Parse(spiffeid.RequireTrustDomainFromString("default.mesh.local"), doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := decodeFilter(t, filterJSON(t, web.Client, generate.OutboundFilter))
	if cfg.Identity == nil || cfg.Identity.Token != "" {
		t.Fatalf("identity = %+v: a trust-domain-wide token is still delivered", cfg.Identity)
	}
	var apiToken string
	for _, r := range cfg.Routes {
		if r.Token == "" {
			t.Fatalf("route %s has no token", r.Cluster)
		}
		svid, err := jwtsvid.ParseAndValidate(r.Token, bundle, []string{r.SpiffeID})
		if err != nil {
			t.Fatalf("route %s: %v", r.Cluster, err)
		}
		if svid.ID.String() != webSID || !slices.Equal(svid.Audience, []string{r.SpiffeID}) || svid.Claims["iss"] != h.tokens.JWTSVIDIssuer() {
			t.Fatalf("route %s: token sub %s aud %v iss %v", r.Cluster, svid.ID, svid.Audience, svid.Claims["iss"])
		}
		if r.TokenExpiresAt != svid.Expiry.Unix() {
			t.Fatalf("route %s: tokenExpiresAt %d, token exp %d", r.Cluster, r.TokenExpiresAt, svid.Expiry.Unix())
		}
		if r.SpiffeID == apiSID {
			apiToken = r.Token
		}
	}
	// api receives web's token and replays it to billing: refused.
	in, err := filter.Parse([]byte(filterJSON(t, billing.Client, generate.InboundFilterPrefix+"15000")))
	if err != nil {
		t.Fatal(err)
	}
	if sub, reason := in.VerifyToken(apiToken, time.Now().Unix()); reason != filter.ReasonTokenAudience {
		t.Fatalf("billing accepted web's token for api: sub %q, reason %q", sub, reason)
	}
	// Replicas of one identity share the tokens: one per destination.
	cfg2 := decodeFilter(t, filterJSON(t, web2.Client, generate.OutboundFilter))
	for i, r := range cfg2.Routes {
		if r.Token != cfg.Routes[i].Token {
			t.Fatalf("web-2's token for %s differs from web-1's", r.Cluster)
		}
	}
	// web → api, billing, web; billing → nothing (no VIPs bound, no outbounds).
	if n := h.srv.identity.shared.len(); n != 3 {
		t.Fatalf("%d tokens cached, want 3", n)
	}
}

// TestInboundFilterGetsOnlyItsMeshKeys: an inbound filter verifies
// JWT-SVIDs with its own mesh's JWT-SVID keys and the CP's issuer: no
// dataplane-token key, no other mesh's key. A rotation reaches it.
func TestInboundFilterGetsOnlyItsMeshKeys(t *testing.T) {
	h := newHarness(t, nil)
	h.apply(resource.KindMesh, "", "other", `{"type":"Mesh","name":"other"}`)
	h.dataplane("api-1", "10.0.0.2", "api", "http", "")
	ctx := context.Background()
	h.token("default", "api-1") // creates default's dataplane-token key
	if _, _, err := h.tokens.IssueJWTSVID(ctx, "other", spiffeid.RequireFromString("spiffe://other.mesh.local/workload/x"), []string{"x"}, 0); err != nil {
		t.Fatal(err)
	}
	api := h.connect("default.api-1", h.token("default", "api-1"), false, nil)
	inbound := func(c *adsclient.Client) *filter.Config {
		js := filterJSON(t, c, generate.InboundFilterPrefix+"15000")
		if js == "" {
			return nil
		}
		return decodeFilter(t, js)
	}
	api.waitFor(t, "inbound filter", func(c *adsclient.Client) bool { return inbound(c) != nil })
	want, err := h.tokens.MeshJWKS(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	cfg := inbound(api.Client)
	if got := jwksKIDs(t, cfg.Inbound.JWKS); !slices.Equal(got, jwksKIDs(t, want)) || len(got) != 1 {
		t.Fatalf("inbound JWKS kids %v, want default's JWT-SVID key %v only", got, jwksKIDs(t, want))
	}
	public, err := h.tokens.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jwksKIDs(t, public)) != 2 {
		t.Fatalf("public JWKS %v: want the JWT-SVID keys of both meshes", jwksKIDs(t, public))
	}
	if cfg.Inbound.JWTIssuer != h.tokens.JWTSVIDIssuer() || cfg.Inbound.JWTIssuer != token.DefaultJWTSVIDIssuer {
		t.Fatalf("jwtIssuer %q, want %q", cfg.Inbound.JWTIssuer, h.tokens.JWTSVIDIssuer())
	}

	kids, err := h.tokens.RotateKeys(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	api.waitFor(t, "the rotated key", func(c *adsclient.Client) bool {
		cfg := inbound(c)
		return cfg != nil && slices.Contains(jwksKIDs(t, cfg.Inbound.JWKS), kids[1]) && len(jwksKIDs(t, cfg.Inbound.JWKS)) == 2
	})
}

// TestForeignTrustDomainGetsNoIdentity: a MeshIdentity rendering another
// trust domain from a label the sidecar wrote yields no config (and so no
// certificate or token) for that dataplane.
func TestForeignTrustDomainGetsNoIdentity(t *testing.T) {
	h := newHarness(t, nil)
	h.apply(resource.KindMeshIdentity, "default", "by-label", `{"type":"MeshIdentity","mesh":"default","name":"by-label",
	  "spec":{"selector":{"dataplane":{"matchLabels":{"td":"partner.example"}}},"spiffeID":{"trustDomain":"{{ label \"td\" }}"}}}`)
	h.dataplane("evil-1", "10.0.0.9", "evil", "http", `{"td":"partner.example"}`)
	r := h.connect("default.evil-1", h.token("default", "evil-1"), false, nil)
	streamCode(t, r)
	if len(r.Resources(resourcev3.SecretType)) != 0 {
		t.Fatal("a dataplane outside the mesh's trust domain received a certificate")
	}
}
