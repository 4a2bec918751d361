package xds

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

var anyJWT = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// leaks returns what in s (or in any base64 string inside it) looks like a
// private key or a JWT.
func leaks(s string) []string {
	var out []string
	check := func(where, v string) {
		if strings.Contains(v, "PRIVATE KEY") {
			out = append(out, where+": a PEM private key")
		}
		if m := anyJWT.FindString(v); m != "" {
			out = append(out, where+": a JWT "+m[:min(len(m), 24)]+"…")
		}
	}
	check("output", s)
	for _, m := range regexp.MustCompile(`[A-Za-z0-9+/=_-]{40,}`).FindAllString(s, -1) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(m); err == nil {
				check("base64 string", string(b))
			}
		}
	}
	return out
}

// TestInspectRedactsKeyMaterial: inspect shows what a stream holds, but
// never the identity's private key, its JWT-SVID or the dataplane token:
// the admin API's output lands in terminals, tickets and CI logs.
func TestInspectRedactsKeyMaterial(t *testing.T) {
	h := newHarness(t, nil)
	h.dataplane("web-1", "10.0.0.1", "web", "http", "")
	dpToken := h.token("default", "web-1")
	web := h.connect("default.web-1", dpToken, false, map[string]any{envoybootstrap.MetaBindOutbounds: true})
	web.waitFor(t, "identity and token", func(c *adsclient.Client) bool {
		ext := c.Resources(resourcev3.ExtensionConfigType)[generate.OutboundFilter]
		return c.Consistent() == nil && c.Resources(resourcev3.SecretType)[generate.IdentitySecret] != nil &&
			ext != nil && strings.Contains(string(ext.GetValue()), `"token":"ey`)
	})
	// What the stream holds: the key and tokens that must not be shown.
	var secret tlsv3.Secret
	if err := web.Resources(resourcev3.SecretType)[generate.IdentitySecret].UnmarshalTo(&secret); err != nil {
		t.Fatal(err)
	}
	keyPEM := secret.GetTlsCertificate().GetPrivateKey().GetInlineBytes()
	block, _ := pem.Decode(secret.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	if len(keyPEM) == 0 || block == nil {
		t.Fatal("the stream holds no identity")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || len(cert.URIs) != 1 {
		t.Fatalf("identity certificate: %v", err)
	}
	svid := anyJWT.FindString(string(web.Resources(resourcev3.ExtensionConfigType)[generate.OutboundFilter].GetValue()))
	var claims struct{ Exp int64 }
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(svid, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		t.Fatalf("JWT-SVID claims: %v %s", err, payload)
	}

	out, err := h.srv.InspectDataplane(context.Background(), "default", "web-1")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if l := leaks(s); len(l) > 0 {
		t.Errorf("inspect output leaks %v:\n%s", l, s)
	}
	for what, secret := range map[string]string{
		"private key": string(keyPEM), "private key (base64)": base64.StdEncoding.EncodeToString(keyPEM),
		"JWT-SVID": svid, "dataplane token": dpToken,
	} {
		if strings.Contains(s, secret) {
			t.Errorf("inspect output holds the %s", what)
		}
	}
	for what, want := range map[string]string{
		"SPIFFE ID":          cert.URIs[0].String(),
		"certificate expiry": cert.NotAfter.UTC().Format(time.RFC3339),
		"certificate serial": cert.SerialNumber.Text(16),
		"token expiry":       time.Unix(claims.Exp, 0).UTC().Format(time.RFC3339),
		"redaction marker":   "[redacted",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("inspect output lacks the %s %q", what, want)
		}
	}
	// Same shape as before: version and resources by type URL, with the
	// identity secret and the filter config still listed.
	var doc struct {
		Version   string                       `json:"version"`
		Resources map[string][]json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || doc.Version == "" || len(doc.Resources[resourcev3.ClusterType]) == 0 {
		t.Fatalf("inspect shape: %v", err)
	}
	for typ, name := range map[string]string{resourcev3.SecretType: generate.IdentitySecret, resourcev3.ExtensionConfigType: generate.OutboundFilter} {
		found := false
		for _, r := range doc.Resources[typ] {
			found = found || strings.Contains(string(r), `"name":"`+name+`"`) || strings.Contains(string(r), `"name": "`+name+`"`)
		}
		if !found {
			t.Errorf("%s %s missing from inspect", typ, name)
		}
	}
}

// TestRedactTokensAnywhere: a field named token at any depth of the
// filter configuration (the identity's, a per-route one) is replaced by
// its expiry; key material in other fields or secret types is redacted.
func TestRedactTokensAnywhere(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	jwt := "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"spiffe://default.mesh.local/workload/web","exp":`+
		strconv.FormatInt(exp.Unix(), 10)+`}`)) + ".c2lnbmF0dXJlLWJ5dGVz"
	filterCfg, _ := json.Marshal(map[string]any{
		"mode":     "outbound",
		"identity": map[string]any{"spiffeId": "spiffe://default.mesh.local/workload/web", "token": jwt},
		"routes":   []any{map[string]any{"cluster": "api", "token": jwt, "auth": map[string]any{"token": "opaque-secret"}}},
		"note":     "header " + jwt,
	})
	keyPEM := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIAb\n-----END EC PRIVATE KEY-----\n"
	rendered, _ := json.Marshal(map[string]any{"version": "v1", "resources": map[string]any{
		resourcev3.ExtensionConfigType: []any{map[string]any{"@type": resourcev3.ExtensionConfigType, "name": "f",
			"typedConfig": map[string]any{"@type": generate.WasmConfigType, "config": map[string]any{
				"configuration": map[string]any{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": string(filterCfg)}}}}},
		resourcev3.SecretType: []any{
			map[string]any{"@type": resourcev3.SecretType, "name": "generic", "genericSecret": map[string]any{"secret": map[string]any{"inlineString": "hunter2"}}},
			map[string]any{"@type": resourcev3.SecretType, "name": "id", "tlsCertificate": map[string]any{
				"privateKey": map[string]any{"inlineString": keyPEM}, "password": map[string]any{"inlineString": "hunter2"}}},
		},
		resourcev3.ClusterType: []any{map[string]any{"name": "c", "metadata": base64.StdEncoding.EncodeToString([]byte(keyPEM))}},
	}})
	out, err := redactInspect(rendered, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if l := leaks(s); len(l) > 0 {
		t.Errorf("leaks %v:\n%s", l, s)
	}
	if strings.Contains(s, "hunter2") || strings.Contains(s, "opaque-secret") {
		t.Errorf("a password or opaque token survived:\n%s", s)
	}
	if n := strings.Count(s, "[redacted JWT; expires 2030-01-02T03:04:05Z]"); n != 3 {
		t.Errorf("%d token markers with the expiry, want 3 (identity, route, free text):\n%s", n, s)
	}
	if !strings.Contains(s, `\"spiffeId\":\"spiffe://default.mesh.local/workload/web\"`) {
		t.Errorf("the SPIFFE ID is gone:\n%s", s)
	}
}
