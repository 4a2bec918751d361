package filter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// MaxTokenLen bounds the length of a JWT-SVID; longer tokens are refused
// before any decoding.
const MaxTokenLen = 8192

// nbfLeeway tolerates clock skew on a token's nbf and iat claims (seconds).
const nbfLeeway = 60

// Reasons a JWT-SVID is refused (Decision.Reason).
const (
	ReasonTokenMalformed = "token_malformed"
	ReasonTokenAlg       = "token_alg"
	ReasonTokenKey       = "token_unknown_key"
	ReasonTokenSignature = "token_signature"
	ReasonTokenClaims    = "token_claims"
	ReasonTokenAudience  = "token_audience"
	ReasonTokenIssuer    = "token_issuer"
	ReasonTokenExpired   = "token_expired"
	ReasonTokenNotYet    = "token_not_yet_valid"
)

// jwk is one key of a JSON Web Key Set.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// parseJWKS compiles the ES256 (EC P-256) keys of a JWKS. Keys of other
// types are ignored, so that a key set can grow new kinds of keys.
func parseJWKS(p *problems, path string, raw json.RawMessage) map[string]*ecdsa.PublicKey {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		p.add(path, "must be a JSON Web Key Set {\"keys\": [...]}: %v", err)
		return nil
	}
	keys := map[string]*ecdsa.PublicKey{}
	for i, rawKey := range set.Keys {
		kp := fmt.Sprintf("%s.keys[%d]", path, i)
		var k jwk
		if err := json.Unmarshal(rawKey, &k); err != nil {
			p.add(kp, "must be a JSON Web Key: %v", err)
			continue
		}
		if k.Kty != "EC" || k.Crv != "P-256" || (k.Use != "" && k.Use != "sig" && k.Use != "jwt-svid") ||
			(k.Alg != "" && k.Alg != "ES256") {
			continue
		}
		if k.Kid == "" {
			p.add(kp+".kid", "required")
			continue
		}
		if _, dup := keys[k.Kid]; dup {
			p.add(kp+".kid", "%q is used by another key", k.Kid)
			continue
		}
		pub, err := ecPublicKey(k.X, k.Y)
		if err != nil {
			p.add(kp, "%v", err)
			continue
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		p.add(path+".keys", "has no EC P-256 signing key")
	}
	return keys
}

// ecPublicKey decodes and checks a P-256 point.
func ecPublicKey(x, y string) (*ecdsa.PublicKey, error) {
	xb, err1 := base64.RawURLEncoding.Strict().DecodeString(x)
	yb, err2 := base64.RawURLEncoding.Strict().DecodeString(y)
	if err1 != nil || err2 != nil || len(xb) != 32 || len(yb) != 32 {
		return nil, fmt.Errorf("x and y must be 32-byte base64url coordinates")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4)
	point = append(point, xb...)
	point = append(point, yb...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("not a P-256 point: %w", err)
	}
	return pub, nil
}

// tokenEntry is a cached verification: either a failure reason, or the
// subject and the time window in which the token is valid.
type tokenEntry struct {
	reason string
	sub    string
	exp    int64
	nbf    int64
}

// VerifyToken checks a JWT-SVID presented in x-ecsmesh-identity: compact JWS,
// alg ES256 only, kid in the JWKS, signature, sub a SPIFFE ID, iss equal to
// the configured issuer (when one is), aud naming an accepted audience, exp
// after now, nbf not after now. The signature is
// verified once per token; the outcome is cached (bounded LRU) and only the
// time window is checked again. It returns the subject, or a Reason*.
func (c *Compiled) VerifyToken(tok string, now int64) (sub, reason string) {
	if len(tok) > MaxTokenLen || tok == "" {
		return "", ReasonTokenMalformed
	}
	e, ok := c.tokens.get(tok)
	if !ok {
		e = c.verifyUncached(tok)
		c.tokens.put(tok, e)
	}
	switch {
	case e.reason != "":
		return "", e.reason
	case now >= e.exp:
		return "", ReasonTokenExpired
	case e.nbf > now+nbfLeeway:
		return "", ReasonTokenNotYet
	}
	return e.sub, ""
}

// joseHeader is the protected header of a JWS.
type joseHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// jwtClaims are the registered claims a JWT-SVID carries.
type jwtClaims struct {
	Iss *string         `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Nbf *float64        `json:"nbf"`
}

func (c *Compiled) verifyUncached(tok string) tokenEntry {
	fail := func(reason string) tokenEntry { return tokenEntry{reason: reason} }
	h64, rest, ok1 := strings.Cut(tok, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return fail(ReasonTokenMalformed)
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err1 := enc.DecodeString(h64)
	pb, err2 := enc.DecodeString(p64)
	sig, err3 := enc.DecodeString(s64)
	if err1 != nil || err2 != nil || err3 != nil {
		return fail(ReasonTokenMalformed)
	}
	var hdr joseHeader
	if json.Unmarshal(hb, &hdr) != nil {
		return fail(ReasonTokenMalformed)
	}
	if hdr.Alg != "ES256" || len(hdr.Crit) > 0 {
		return fail(ReasonTokenAlg)
	}
	if hdr.Typ != "" && hdr.Typ != "JWT" && hdr.Typ != "JOSE" {
		return fail(ReasonTokenMalformed)
	}
	key, ok := c.keys[hdr.Kid]
	if !ok {
		return fail(ReasonTokenKey)
	}
	if len(sig) != 64 {
		return fail(ReasonTokenSignature)
	}
	digest := sha256.Sum256([]byte(tok[:len(h64)+1+len(p64)]))
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key, digest[:], r, s) {
		return fail(ReasonTokenSignature)
	}
	var cl jwtClaims
	if json.Unmarshal(pb, &cl) != nil {
		return fail(ReasonTokenClaims)
	}
	if !ValidPeerID(cl.Sub) || cl.Exp == nil || !finite(*cl.Exp) || (cl.Nbf != nil && !finite(*cl.Nbf)) {
		return fail(ReasonTokenClaims)
	}
	if c.issuer != "" && (cl.Iss == nil || *cl.Iss != c.issuer) {
		return fail(ReasonTokenIssuer)
	}
	auds, ok := parseAud(cl.Aud)
	if !ok {
		return fail(ReasonTokenClaims)
	}
	if !c.audienceOK(auds) {
		return fail(ReasonTokenAudience)
	}
	e := tokenEntry{sub: cl.Sub, exp: int64(*cl.Exp), nbf: math.MinInt64}
	if cl.Nbf != nil {
		e.nbf = int64(*cl.Nbf)
	}
	return e
}

func finite(f float64) bool {
	return !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e15
}

// parseAud accepts a string or an array of strings (RFC 7519 §4.1.3).
func parseAud(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many, true
	}
	return nil, false
}

func (c *Compiled) audienceOK(auds []string) bool {
	for _, a := range auds {
		for _, want := range c.audiences {
			if a == want {
				return true
			}
		}
	}
	return false
}
