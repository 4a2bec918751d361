package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// dataplaneClaims are the private claims of a dataplane token on the wire.
type dataplaneClaims struct {
	Mesh      string `json:"mesh"`
	Name      string `json:"name"`
	RoleARN   string `json:"roleArn,omitempty"`
	RoleID    string `json:"roleId,omitempty"`
	ProxyType string `json:"proxyType"`
}

// IssueDataplaneToken signs a dataplane token for c.Mesh/c.Name
// with the mesh's current dataplane-token key: ES256, `kid` header, `typ`
// DataplaneTokenType, `iss` DataplaneTokenIssuer, `aud`
// DataplaneTokenAudience, `sub` c.SPIFFEID, claims mesh, name, roleArn,
// roleId, proxyType (default dataplane), and iat/nbf/exp where exp = now + the Mesh's tokens.ttl (default
// 1h, capped at MaxTokenTTL). The Mesh must exist in the store. It returns
// the token and c with IssuedAt and ExpiresAt set.
func (i *Issuer) IssueDataplaneToken(ctx context.Context, c DataplaneClaims) (string, DataplaneClaims, error) {
	if !resource.ValidMeshName(c.Mesh) {
		return "", c, fmt.Errorf("token: issuing dataplane token: invalid mesh name %q", c.Mesh)
	}
	if c.Name == "" {
		return "", c, errors.New("token: issuing dataplane token: the dataplane name is empty")
	}
	if c.ProxyType == "" {
		c.ProxyType = resource.ProxyTypeDataplane
	}
	switch c.ProxyType {
	case resource.ProxyTypeDataplane, resource.ProxyTypeIngress, resource.ProxyTypeEgress:
	default:
		return "", c, fmt.Errorf("token: issuing dataplane token for %s/%s: unknown proxy type %q", c.Mesh, c.Name, c.ProxyType)
	}
	if _, err := spiffeid.FromString(c.SPIFFEID); err != nil {
		return "", c, fmt.Errorf("token: issuing dataplane token for %s/%s: SPIFFE ID %q: %w", c.Mesh, c.Name, c.SPIFFEID, err)
	}
	m, err := i.mesh(ctx, c.Mesh)
	if err != nil {
		return "", c, err
	}
	ttl := min(m.TokenTTL(), MaxTokenTTL)
	ks, err := i.signingKeys(ctx, c.Mesh, KeyDataplaneToken)
	if err != nil {
		return "", c, err
	}
	now := i.now().Truncate(time.Second)
	c.IssuedAt, c.ExpiresAt = now.UTC(), now.Add(ttl).UTC()
	std := jwt.Claims{
		Issuer:    DataplaneTokenIssuer,
		Subject:   c.SPIFFEID,
		Audience:  jwt.Audience{DataplaneTokenAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(c.ExpiresAt),
	}
	raw, err := jwt.Signed(ks.signer).Claims(std).
		Claims(dataplaneClaims{Mesh: c.Mesh, Name: c.Name, RoleARN: c.RoleARN, RoleID: c.RoleID, ProxyType: c.ProxyType}).
		Serialize()
	if err != nil {
		return "", c, fmt.Errorf("token: signing dataplane token for %s/%s: %w", c.Mesh, c.Name, err)
	}
	return raw, c, nil
}

// VerifyDataplaneToken checks a dataplane token strictly and returns its
// claims. It accepts only compact ES256 JWS with typ DataplaneTokenType and
// a kid that is a current or still-valid retired dataplane-token key of the
// mesh named in the token; it requires iss, aud, sub (a SPIFFE ID), mesh,
// name, iat, nbf and exp, with Leeway of clock skew. Keys are cached, so a
// call costs one ECDSA verification. Every error starts with "token: ".
func (i *Issuer) VerifyDataplaneToken(ctx context.Context, raw string) (DataplaneClaims, error) {
	c, err := i.verifyDataplaneToken(ctx, raw)
	if err != nil {
		return DataplaneClaims{}, fmt.Errorf("token: invalid dataplane token: %w", err)
	}
	return c, nil
}

func (i *Issuer) verifyDataplaneToken(ctx context.Context, raw string) (DataplaneClaims, error) {
	if len(raw) == 0 || len(raw) > maxTokenBytes {
		return DataplaneClaims{}, fmt.Errorf("length %d out of range", len(raw))
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return DataplaneClaims{}, fmt.Errorf("parsing: %w", err)
	}
	if len(tok.Headers) != 1 {
		return DataplaneClaims{}, errors.New("exactly one signature is required")
	}
	h := tok.Headers[0]
	if h.Algorithm != string(jose.ES256) {
		return DataplaneClaims{}, fmt.Errorf("algorithm %q refused", h.Algorithm)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != DataplaneTokenType {
		return DataplaneClaims{}, fmt.Errorf("typ %q is not %q", typ, DataplaneTokenType)
	}
	if h.JSONWebKey != nil || h.ExtraHeaders["jku"] != nil || h.ExtraHeaders["x5u"] != nil {
		return DataplaneClaims{}, errors.New("embedded or referenced keys are refused")
	}
	if h.KeyID == "" {
		return DataplaneClaims{}, errors.New("no kid header")
	}
	var unverified dataplaneClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return DataplaneClaims{}, fmt.Errorf("decoding claims: %w", err)
	}
	if !resource.ValidMeshName(unverified.Mesh) {
		return DataplaneClaims{}, fmt.Errorf("invalid mesh claim %q", unverified.Mesh)
	}
	now := i.now()
	key, err := i.verificationKey(ctx, unverified.Mesh, KeyDataplaneToken, h.KeyID)
	if err != nil {
		return DataplaneClaims{}, err
	}
	if !key.validAt(now) {
		return DataplaneClaims{}, fmt.Errorf("key %q of mesh %q is retired", key.kid, unverified.Mesh)
	}
	var std jwt.Claims
	var dc dataplaneClaims
	if err := tok.Claims(key.pub, &std, &dc); err != nil {
		return DataplaneClaims{}, fmt.Errorf("signature: %w", err)
	}
	if dc.Mesh != unverified.Mesh {
		return DataplaneClaims{}, errors.New("mesh claim changed between decodings")
	}
	switch {
	case std.Expiry == nil:
		return DataplaneClaims{}, errors.New("no exp claim")
	case std.NotBefore == nil:
		return DataplaneClaims{}, errors.New("no nbf claim")
	case std.IssuedAt == nil:
		return DataplaneClaims{}, errors.New("no iat claim")
	case dc.Name == "":
		return DataplaneClaims{}, errors.New("no name claim")
	}
	switch dc.ProxyType {
	case resource.ProxyTypeDataplane, resource.ProxyTypeIngress, resource.ProxyTypeEgress:
	default:
		return DataplaneClaims{}, fmt.Errorf("proxyType claim %q is not dataplane, ingress or egress", dc.ProxyType)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{
		Issuer:      DataplaneTokenIssuer,
		AnyAudience: jwt.Audience{DataplaneTokenAudience},
		Time:        now,
	}, Leeway); err != nil {
		return DataplaneClaims{}, err
	}
	if _, err := spiffeid.FromString(std.Subject); err != nil {
		return DataplaneClaims{}, fmt.Errorf("sub %q is not a SPIFFE ID: %w", std.Subject, err)
	}
	return DataplaneClaims{
		Mesh: dc.Mesh, Name: dc.Name, SPIFFEID: std.Subject, RoleARN: dc.RoleARN, RoleID: dc.RoleID, ProxyType: dc.ProxyType,
		IssuedAt: std.IssuedAt.Time().UTC(), ExpiresAt: std.Expiry.Time().UTC(),
	}, nil
}
