package token

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/controlplane/resource"
)

// IssueJWTSVID signs a JWT-SVID (SPEC §3.3) for id with mesh's current
// JWT-SVID key: ES256, `kid` and `typ: JWT` headers, `sub` id, `aud`
// audience (default: the mesh's trust domain), iat and exp = now + ttl
// (0 means DefaultJWTSVIDTTL; at most MaxTokenTTL), and `iss` when the
// Issuer has an IssuerURL. The audience may not contain
// DataplaneTokenAudience. It returns the token and its expiry.
func (i *Issuer) IssueJWTSVID(ctx context.Context, mesh string, id spiffeid.ID, audience []string, ttl time.Duration) (string, time.Time, error) {
	if !resource.ValidMeshName(mesh) {
		return "", time.Time{}, fmt.Errorf("token: issuing JWT-SVID: invalid mesh name %q", mesh)
	}
	if id.IsZero() {
		return "", time.Time{}, fmt.Errorf("token: issuing JWT-SVID in mesh %q: empty SPIFFE ID", mesh)
	}
	switch {
	case ttl == 0:
		ttl = DefaultJWTSVIDTTL
	case ttl < 0 || ttl > MaxTokenTTL:
		return "", time.Time{}, fmt.Errorf("token: issuing JWT-SVID for %s: TTL %s out of range (0, %s]", id, ttl, MaxTokenTTL)
	}
	if slices.Contains(audience, DataplaneTokenAudience) {
		return "", time.Time{}, fmt.Errorf("token: issuing JWT-SVID for %s: audience %q is reserved for dataplane tokens", id, DataplaneTokenAudience)
	}
	for _, a := range audience {
		if a == "" {
			return "", time.Time{}, fmt.Errorf("token: issuing JWT-SVID for %s: empty audience", id)
		}
	}
	if len(audience) == 0 {
		m, err := i.mesh(ctx, mesh)
		if err != nil {
			return "", time.Time{}, err
		}
		td, err := m.TrustDomain()
		if err != nil {
			return "", time.Time{}, fmt.Errorf("token: issuing JWT-SVID for %s: trust domain of mesh %q: %w", id, mesh, err)
		}
		audience = []string{td}
	} else if _, err := i.mesh(ctx, mesh); err != nil {
		return "", time.Time{}, err
	}
	ks, err := i.signingKeys(ctx, mesh, KeyJWTSVID)
	if err != nil {
		return "", time.Time{}, err
	}
	now := i.now().Truncate(time.Second)
	exp := now.Add(ttl).UTC()
	std := jwt.Claims{
		Issuer:   i.issuerURL,
		Subject:  id.String(),
		Audience: jwt.Audience(audience),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(exp),
	}
	raw, err := jwt.Signed(ks.signer).Claims(std).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: signing JWT-SVID for %s: %w", id, err)
	}
	return raw, exp, nil
}
