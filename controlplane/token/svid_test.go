package token

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
)

func mustID(t testing.TB, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// goSPIFFEBundle builds the bundle a third-party verifier would build from
// the published JWKS.
func goSPIFFEBundle(t *testing.T, iss *Issuer, td string) *jwtbundle.Bundle {
	t.Helper()
	b, err := iss.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := jwtbundle.Parse(spiffeid.RequireTrustDomainFromString(td), b)
	if err != nil {
		t.Fatal(err)
	}
	return bundle
}

func TestJWTSVIDVerifiesWithGoSPIFFE(t *testing.T) {
	// go-spiffe validates against the wall clock.
	f := newFixture(t, time.Now)
	ctx := context.Background()
	id := mustID(t, "spiffe://default.mesh.local/workload/web")
	raw, exp, err := f.iss.IssueJWTSVID(ctx, "default", id, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expiry in %s, want the 1h default", d)
	}
	bundle := goSPIFFEBundle(t, f.iss, "default.mesh.local")
	svid, err := jwtsvid.ParseAndValidate(raw, bundle, []string{"default.mesh.local"})
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != id || !svid.Expiry.Equal(exp) {
		t.Fatalf("svid = %v %v", svid.ID, svid.Expiry)
	}
	if _, err := jwtsvid.ParseAndValidate(raw, bundle, []string{"someone-else"}); err == nil {
		t.Fatal("JWT-SVID accepted for another audience")
	}

	narrowed, _, err := f.iss.IssueJWTSVID(ctx, "default", id, []string{"redis"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsvid.ParseAndValidate(narrowed, bundle, []string{"redis"}); err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsvid.ParseAndValidate(narrowed, bundle, []string{"default.mesh.local"}); err == nil {
		t.Fatal("narrowed JWT-SVID accepted for the trust domain")
	}

	// Another mesh's JWT-SVID does not verify with this mesh's keys alone.
	other, _, err := f.iss.IssueJWTSVID(ctx, "other", mustID(t, "spiffe://other.mesh.local/workload/web"), []string{"x"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := goSPIFFEBundle(t, f.iss, "default.mesh.local")
	for kid := range rec.JWTAuthorities() {
		if kid == headerKID(t, other) {
			rec.RemoveJWTAuthority(kid)
		}
	}
	if _, err := jwtsvid.ParseAndValidate(other, rec, []string{"x"}); err == nil {
		t.Fatal("other mesh's JWT-SVID accepted without its key")
	}
}

func TestDataplaneTokenIsNotAJWTSVID(t *testing.T) {
	f := newFixture(t, time.Now)
	raw, _ := f.issue(t, "default", "web-1")
	bundle := goSPIFFEBundle(t, f.iss, "default.mesh.local")
	for _, aud := range [][]string{{DataplaneTokenAudience}, {"default.mesh.local"}} {
		if _, err := jwtsvid.ParseAndValidate(raw, bundle, aud); err == nil {
			t.Fatalf("dataplane token accepted as a JWT-SVID for %v", aud)
		}
	}
}

func TestIssueJWTSVIDRefusals(t *testing.T) {
	f := newFixture(t, nil)
	id := mustID(t, "spiffe://default.mesh.local/workload/web")
	for _, tc := range []struct {
		name string
		mesh string
		id   spiffeid.ID
		aud  []string
		ttl  time.Duration
	}{
		{"dataplane audience", "default", id, []string{DataplaneTokenAudience}, 0},
		{"empty audience entry", "default", id, []string{""}, 0},
		{"negative TTL", "default", id, nil, -time.Second},
		{"TTL beyond max", "default", id, nil, MaxTokenTTL + time.Second},
		{"unknown mesh", "ghost", id, nil, 0},
		{"invalid mesh", "", id, nil, 0},
		{"zero ID", "default", spiffeid.ID{}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.iss.IssueJWTSVID(context.Background(), tc.mesh, tc.id, tc.aud, tc.ttl)
			if err == nil || !strings.HasPrefix(err.Error(), "token: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestJWTSVIDKeepsVerifyingAfterRotation(t *testing.T) {
	f := newFixture(t, time.Now)
	ctx := context.Background()
	id := mustID(t, "spiffe://default.mesh.local/workload/web")
	old, _, err := f.iss.IssueJWTSVID(ctx, "default", id, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.iss.RotateKeys(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	fresh, _, err := f.iss.IssueJWTSVID(ctx, "default", id, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if headerKID(t, old) == headerKID(t, fresh) {
		t.Fatal("rotation did not change the JWT-SVID key")
	}
	bundle := goSPIFFEBundle(t, f.iss, "default.mesh.local")
	for _, raw := range []string{old, fresh} {
		if _, err := jwtsvid.ParseAndValidate(raw, bundle, []string{"default.mesh.local"}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHandler(t *testing.T) {
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.iss.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	// Two meshes, their JWT-SVID keys: published before any token was issued.
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
	}
	for _, k := range set.Keys {
		if _, ok := k["d"]; ok {
			t.Fatal("JWKS leaks a private key")
		}
	}

	resp, err = http.Get(srv.URL + OpenIDConfigurationPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != srv.URL || doc["jwks_uri"] != srv.URL+JWKSPath || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("discovery = %v", doc)
	}
	if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
		t.Fatalf("algs = %v", doc["id_token_signing_alg_values_supported"])
	}
	if _, ok := doc["subject_types_supported"]; !ok {
		t.Fatal("subject_types_supported missing")
	}

	resp, err = http.Post(srv.URL+JWKSPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST status %d", resp.StatusCode)
	}
}

func TestOpenIDConfigurationIssuer(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(OpenIDConfiguration("https://cp.example.com/"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != "https://cp.example.com" || doc["jwks_uri"] != "https://cp.example.com/.well-known/jwks.json" {
		t.Fatalf("doc = %v", doc)
	}
}

func FuzzVerifyDataplaneToken(f *testing.F) {
	fx := newFixture(f, nil)
	raw, _ := fx.issue(f, "default", "web-1")
	f.Add(raw)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(raw[:len(raw)/2])
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := fx.iss.VerifyDataplaneToken(context.Background(), s)
		if err == nil && s != raw {
			// Only the issued token (or a re-encoding of its exact
			// signature over its exact payload) may verify.
			if c.Mesh != "default" || c.Name != "web-1" {
				t.Fatalf("forged token accepted: %q -> %+v", s, c)
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "token: ") {
			t.Fatalf("error without prefix: %v", err)
		}
	})
}

func BenchmarkVerifyDataplaneToken(b *testing.B) {
	f := newFixture(b, nil)
	raw, _ := f.issue(b, "default", "web-1")
	ctx := context.Background()
	if _, err := f.iss.VerifyDataplaneToken(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.iss.VerifyDataplaneToken(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueDataplaneToken(b *testing.B) {
	f := newFixture(b, nil)
	f.issue(b, "default", "web-1")
	b.ReportAllocs()
	for b.Loop() {
		f.issue(b, "default", "web-1")
	}
}
