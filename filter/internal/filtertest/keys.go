// Package filtertest holds the behaviour table every form of the filter is
// tested against (core, proxy-wasm natively and as .wasm, Envoy Go filter),
// and helpers that mint ES256 JWT-SVIDs and key sets for it.
package filtertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Times used by the table. They are far from any real clock (the wasm
// runtime under test may report a fixed 2022 date), so a token is expired
// or valid in every mode.
const (
	// Expired is 2001-09-09.
	Expired int64 = 1_000_000_000
	// Valid is 2100-01-01.
	Valid int64 = 4_102_444_800
)

// Signer is an ES256 key with a key ID.
type Signer struct {
	// Kid is the JWK key ID.
	Kid string
	// Key is the private key.
	Key *ecdsa.PrivateKey
}

// NewSigner makes a fresh P-256 key.
func NewSigner(kid string) *Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("filtertest: generating key: %v", err))
	}
	return &Signer{Kid: kid, Key: k}
}

// JWK returns the public JWK of s.
func (s *Signer) JWK() map[string]string {
	raw, err := s.Key.PublicKey.ECDH()
	if err != nil {
		panic(fmt.Sprintf("filtertest: public key: %v", err))
	}
	pt := raw.Bytes() // 0x04 || X || Y
	enc := base64.RawURLEncoding
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": s.Kid, "use": "jwt-svid",
		"x": enc.EncodeToString(pt[1:33]), "y": enc.EncodeToString(pt[33:65])}
}

// JWKS returns {"keys": [...]} of the signers.
func JWKS(signers ...*Signer) json.RawMessage {
	keys := make([]map[string]string, 0, len(signers))
	for _, s := range signers {
		keys = append(keys, s.JWK())
	}
	out, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(fmt.Sprintf("filtertest: encoding JWKS: %v", err))
	}
	return out
}

// Token signs claims with s as an ES256 JWS.
func (s *Signer) Token(claims map[string]any) string {
	return s.TokenWithHeader(map[string]any{"alg": "ES256", "kid": s.Kid, "typ": "JWT"}, claims)
}

// TokenWithHeader signs claims under an arbitrary protected header.
func (s *Signer) TokenWithHeader(header, claims map[string]any) string {
	input := encodePart(header) + "." + encodePart(claims)
	digest := sha256.Sum256([]byte(input))
	r, sv, err := ecdsa.Sign(rand.Reader, s.Key, digest[:])
	if err != nil {
		panic(fmt.Sprintf("filtertest: signing: %v", err))
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Unsigned returns an "alg: none" token with the given claims.
func Unsigned(claims map[string]any) string {
	return encodePart(map[string]any{"alg": "none", "typ": "JWT"}) + "." + encodePart(claims) + "."
}

// Issuer is the iss of the table's JWT-SVIDs and the inbound.jwtIssuer of
// its inbound configuration.
const Issuer = "https://cp.mesh.example"

// Claims returns JWT-SVID claims issued by Issuer for sub, audience aud,
// expiring at exp.
func Claims(sub, aud string, exp int64) map[string]any {
	return map[string]any{"iss": Issuer, "sub": sub, "aud": []string{aud}, "exp": exp, "iat": Expired - 10}
}

// With returns a copy of claims with key set to v, or removed when v is nil.
func With(claims map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(claims)+1)
	for k, val := range claims {
		out[k] = val
	}
	if v == nil {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}

func encodePart(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("filtertest: encoding JWT part: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
