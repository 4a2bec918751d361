package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func putMesh(t testing.TB, s store.Store, m *resource.Mesh) {
	t.Helper()
	m.Type = resource.KindMesh
	b, err := resource.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertRecord(context.Background(), s, store.Record{Key: store.Key{Kind: resource.KindMesh, Name: m.Name}, Spec: b}); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	store *memory.Store
	clock *clock
	iss   *Issuer
}

func newFixture(t testing.TB, now func() time.Time) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if now == nil {
		now = c.Now
	}
	s := memory.New(now)
	ttl := resource.Duration{Duration: 10 * time.Minute}
	putMesh(t, s, &resource.Mesh{Meta: resource.Meta{Name: "default"}, Tokens: &resource.MeshTokens{TTL: &ttl}})
	putMesh(t, s, &resource.Mesh{Meta: resource.Meta{Name: "other"}})
	iss, err := New(Config{Store: s, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, clock: c, iss: iss}
}

func (f *fixture) issue(t testing.TB, mesh, name string) (string, DataplaneClaims) {
	t.Helper()
	raw, c, err := f.iss.IssueDataplaneToken(context.Background(), DataplaneClaims{
		Mesh: mesh, Name: name, SPIFFEID: "spiffe://" + mesh + ".mesh.local/workload/web",
		RoleARN: "arn:aws:iam::111122223333:role/web", RoleID: "AROAEXAMPLE",
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw, c
}

// currentKey reads the current private key of (mesh, p) from the store.
func (f *fixture) currentKey(t testing.TB, mesh string, p Purpose) *signingKey {
	t.Helper()
	rec, err := f.store.Get(context.Background(), store.Key{Kind: KindSigningKey, Mesh: mesh, Name: string(p)})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := parseKeyRecord(rec, typeOf(p), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ks.current
}

func TestDataplaneTokenRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	raw, issued := f.issue(t, "default", "web-1")
	if got, want := issued.ExpiresAt.Sub(issued.IssuedAt), 10*time.Minute; got != want {
		t.Fatalf("lifetime = %s, want the mesh's tokens.ttl %s", got, want)
	}
	got, err := f.iss.VerifyDataplaneToken(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got != issued {
		t.Fatalf("claims = %+v, want %+v", got, issued)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	if h.KeyID != f.currentKey(t, "default", KeyDataplaneToken).kid || h.ExtraHeaders[jose.HeaderType] != DataplaneTokenType {
		t.Fatalf("headers = %+v", h)
	}
	var m map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sub", "mesh", "name", "roleArn", "roleId", "iat", "nbf", "exp", "aud", "iss"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claim %q missing from %v", k, m)
		}
	}
	// The default mesh TTL is 1h.
	_, c2 := f.issue(t, "other", "db-1")
	if got := c2.ExpiresAt.Sub(c2.IssuedAt); got != time.Hour {
		t.Fatalf("default lifetime = %s, want 1h", got)
	}
}

func TestIssueDataplaneTokenRefusals(t *testing.T) {
	f := newFixture(t, nil)
	for name, c := range map[string]DataplaneClaims{
		"unknown mesh":   {Mesh: "nope", Name: "a", SPIFFEID: "spiffe://nope.mesh.local/x"},
		"invalid mesh":   {Mesh: "Bad_Mesh", Name: "a", SPIFFEID: "spiffe://x.local/x"},
		"no name":        {Mesh: "default", SPIFFEID: "spiffe://default.mesh.local/x"},
		"bad SPIFFE ID":  {Mesh: "default", Name: "a", SPIFFEID: "https://default.mesh.local/x"},
		"empty SPIFFEID": {Mesh: "default", Name: "a"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := f.iss.IssueDataplaneToken(context.Background(), c); err == nil || !strings.HasPrefix(err.Error(), "token: ") {
				t.Fatalf("err = %v, want a token: error", err)
			}
		})
	}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign builds a compact JWS over claims with the given key and headers.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": DataplaneTokenIssuer, "aud": []string{DataplaneTokenAudience},
		"sub": "spiffe://default.mesh.local/workload/web", "mesh": "default", "name": "web-1", "proxyType": "dataplane",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for a, b := range m {
		out[a] = b
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestVerifyDataplaneTokenAttacks(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := f.clock.Now()
	valid, _ := f.issue(t, "default", "web-1")
	f.issue(t, "other", "db-1")
	key := f.currentKey(t, "default", KeyDataplaneToken)
	otherKey := f.currentKey(t, "other", KeyDataplaneToken)
	svid, _, err := f.iss.IssueJWTSVID(ctx, "default", mustID(t, "spiffe://default.mesh.local/workload/web"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	svidKey := f.currentKey(t, "default", KeyJWTSVID)
	pubDER, _ := x509.MarshalPKIXPublicKey(key.pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: key.pub, KeyID: key.kid})
	parts := strings.Split(valid, ".")
	good := goodClaims(now)

	if _, err := f.iss.VerifyDataplaneToken(ctx, sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, good)); err != nil {
		t.Fatalf("control token refused: %v", err)
	}

	cases := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not a token"},
		{"alg none", b64(map[string]string{"alg": "none", "kid": key.kid, "typ": DataplaneTokenType}) + "." + b64(good) + "."},
		{"alg none with the real signature", b64(map[string]string{"alg": "none", "kid": key.kid, "typ": DataplaneTokenType}) + "." + parts[1] + "." + parts[2]},
		{"HS256 with the public key PEM as secret", sign(t, jose.HS256, pubPEM, key.kid, DataplaneTokenType, good)},
		{"HS256 with the public JWK as secret", sign(t, jose.HS256, pubJWK, key.kid, DataplaneTokenType, good)},
		{"ES384 header", b64(map[string]string{"alg": "ES384", "kid": key.kid, "typ": DataplaneTokenType}) + "." + parts[1] + "." + parts[2]},
		{"unknown kid", sign(t, jose.ES256, key.priv, "no-such-kid", DataplaneTokenType, good)},
		{"no kid", sign(t, jose.ES256, key.priv, "", DataplaneTokenType, good)},
		{"other mesh's key claiming this mesh", sign(t, jose.ES256, otherKey.priv, otherKey.kid, DataplaneTokenType, good)},
		{"other mesh's key with this mesh's kid", sign(t, jose.ES256, otherKey.priv, key.kid, DataplaneTokenType, good)},
		{"JWT-SVID key", sign(t, jose.ES256, svidKey.priv, svidKey.kid, DataplaneTokenType, good)},
		{"JWT-SVID presented as dataplane token", svid},
		{"typ JWT", sign(t, jose.ES256, key.priv, key.kid, "JWT", good)},
		{"no typ", sign(t, jose.ES256, key.priv, key.kid, "", good)},
		{"expired", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "exp", now.Add(-time.Minute).Unix()))},
		{"not yet valid", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "nbf", now.Add(5*time.Minute).Unix()))},
		{"issued in the future", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "iat", now.Add(5*time.Minute).Unix()))},
		{"no proxyType", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "proxyType", nil))},
		{"unknown proxyType", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "proxyType", "admin"))},
		{"no exp", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "exp", nil))},
		{"no nbf", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "nbf", nil))},
		{"no iat", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "iat", nil))},
		{"wrong aud", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "aud", []string{"default.mesh.local"}))},
		{"no aud", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "aud", nil))},
		{"wrong iss", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "iss", "evil"))},
		{"sub not a SPIFFE ID", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "sub", "web"))},
		{"no name", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "name", nil))},
		{"no mesh", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "mesh", nil))},
		{"unknown mesh", sign(t, jose.ES256, key.priv, key.kid, DataplaneTokenType, with(good, "mesh", "ghost"))},
		{"payload swapped to other mesh", parts[0] + "." + b64(with(good, "mesh", "other")) + "." + parts[2]},
		{"payload tampered", parts[0] + "." + b64(with(good, "name", "admin")) + "." + parts[2]},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"embedded jwk", b64(map[string]any{"alg": "ES256", "kid": key.kid, "typ": DataplaneTokenType, "jwk": json.RawMessage(pubJWK)}) + "." + parts[1] + "." + parts[2]},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
		{"too long", valid + strings.Repeat("A", maxTokenBytes)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.iss.VerifyDataplaneToken(ctx, tc.token)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "token: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestDataplaneTokenExpiresWithClock(t *testing.T) {
	f := newFixture(t, nil)
	raw, _ := f.issue(t, "default", "web-1")
	f.clock.Advance(10*time.Minute + Leeway - time.Second)
	if _, err := f.iss.VerifyDataplaneToken(context.Background(), raw); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	if _, err := f.iss.VerifyDataplaneToken(context.Background(), raw); err == nil {
		t.Fatal("expired token accepted")
	}
}

func TestRotationKeepsOldTokensValid(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	old, _ := f.issue(t, "default", "web-1")
	oldKID := f.currentKey(t, "default", KeyDataplaneToken).kid
	if _, err := f.iss.JWKS(ctx); err != nil { // creates the JWT-SVID keys
		t.Fatal(err)
	}
	oldSVIDKID := f.currentKey(t, "default", KeyJWTSVID).kid
	// A second replica on the same store, with a warm cache.
	replica, err := New(Config{Store: f.store, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.VerifyDataplaneToken(ctx, old); err != nil {
		t.Fatal(err)
	}
	kids, err := f.iss.RotateKeys(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 2 || kids[0] == oldKID {
		t.Fatalf("rotation returned %v (old %s)", kids, oldKID)
	}
	fresh, _ := f.issue(t, "default", "web-2")
	if kid := headerKID(t, fresh); kid != kids[0] {
		t.Fatalf("new token signed by %s, want the new key %s", kid, kids[0])
	}
	// The replica re-reads the mesh's keys on an unknown kid (at most once
	// a second without Run).
	f.clock.Advance(2 * time.Second)
	for _, v := range []*Issuer{f.iss, replica} {
		for _, raw := range []string{old, fresh} {
			if _, err := v.VerifyDataplaneToken(ctx, raw); err != nil {
				t.Fatalf("after rotation: %v", err)
			}
		}
	}
	// The JWKS publishes the JWT-SVID keys, old and new, never the
	// dataplane-token keys.
	jwks := jwksKIDs(t, f.iss)
	if !jwks[oldSVIDKID] || !jwks[kids[1]] || jwks[oldKID] || jwks[kids[0]] {
		t.Fatalf("JWKS %v: want old %s and new %s, without the dataplane-token keys %s, %s", jwks, oldSVIDKID, kids[1], oldKID, kids[0])
	}
	// Once every token the old key signed has expired, the key goes.
	f.clock.Advance(MaxTokenTTL + retireSlack + time.Second)
	if jwksKIDs(t, f.iss)[oldSVIDKID] {
		t.Fatal("retired key still published after its window")
	}
	forged := sign(t, jose.ES256, mustOldKey(t, f, oldKID), oldKID, DataplaneTokenType, goodClaims(f.clock.Now()))
	if _, err := f.iss.VerifyDataplaneToken(ctx, forged); err == nil {
		t.Fatal("token of a key past its verification window accepted")
	}
	if _, err := f.iss.RotateKeys(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	rec, _ := f.store.Get(ctx, store.Key{Kind: KindSigningKey, Mesh: "default", Name: string(KeyDataplaneToken)})
	var doc keyDoc
	_ = json.Unmarshal(rec.Spec, &doc)
	if len(doc.Keys) != 2 {
		t.Fatalf("keys after second rotation = %d, want current + one retired (expired one pruned)", len(doc.Keys))
	}
}

func mustOldKey(t *testing.T, f *fixture, kid string) *ecdsa.PrivateKey {
	t.Helper()
	rec, err := f.store.Get(context.Background(), store.Key{Kind: KindSigningKey, Mesh: "default", Name: string(KeyDataplaneToken)})
	if err != nil {
		t.Fatal(err)
	}
	var doc keyDoc
	if err := json.Unmarshal(rec.Spec, &doc); err != nil {
		t.Fatal(err)
	}
	for _, sk := range doc.Keys {
		if sk.KID == kid {
			k, err := parseStoredKey(sk)
			if err != nil {
				t.Fatal(err)
			}
			return k.priv
		}
	}
	t.Fatalf("key %s not stored", kid)
	return nil
}

func headerKID(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}

func jwksKIDs(t *testing.T, iss *Issuer) map[string]bool {
	t.Helper()
	b, err := iss.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		if k.Algorithm != "ES256" || k.Use != "sig" || !k.IsPublic() {
			t.Fatalf("bad JWK %+v", k)
		}
		out[k.KeyID] = true
	}
	return out
}

func TestConcurrentFirstUseConvergesOnOneKey(t *testing.T) {
	f := newFixture(t, nil)
	const replicas = 8
	tokens := make([]string, replicas)
	var wg sync.WaitGroup
	for r := range replicas {
		iss, err := New(Config{Store: f.store, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, _, err := iss.IssueDataplaneToken(context.Background(), DataplaneClaims{Mesh: "default", Name: "web", SPIFFEID: "spiffe://default.mesh.local/w"})
			if err != nil {
				t.Error(err)
			}
			tokens[r] = raw
		}()
	}
	wg.Wait()
	for _, raw := range tokens {
		if _, err := f.iss.VerifyDataplaneToken(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
		if headerKID(t, raw) != headerKID(t, tokens[0]) {
			t.Fatal("replicas signed with different keys")
		}
	}
}

func TestRunDropsRotatedKeys(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	replica, _ := New(Config{Store: f.store, Now: f.clock.Now})
	done := make(chan error, 1)
	go func() { done <- replica.Run(ctx) }()
	if _, _, err := replica.IssueDataplaneToken(ctx, DataplaneClaims{Mesh: "default", Name: "w", SPIFFEID: "spiffe://default.mesh.local/w"}); err != nil {
		t.Fatal(err)
	}
	// Run subscribes asynchronously: rotate until the replica follows.
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids, err := f.iss.RotateKeys(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		raw, _, err := replica.IssueDataplaneToken(ctx, DataplaneClaims{Mesh: "default", Name: "w", SPIFFEID: "spiffe://default.mesh.local/w"})
		if err != nil {
			t.Fatal(err)
		}
		if headerKID(t, raw) == kids[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica still signs with the rotated-out key")
		}
	}
	cancel()
	<-done
}
