package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// ErrForeignTrustDomain is returned (wrapped) when a JWT-SVID is asked for
// a SPIFFE ID outside the mesh's trust domain.
var ErrForeignTrustDomain = errors.New("the SPIFFE ID is outside the mesh's trust domain")

// tdEntry is a cached trust domain of a mesh.
type tdEntry struct {
	td       spiffeid.TrustDomain
	loadedAt time.Time
}

// IssueJWTSVID signs a JWT-SVID for id with mesh's current
// JWT-SVID key: ES256, `kid` and `typ: JWT` headers, `iss`
// JWTSVIDIssuer(), `sub` id, `aud` audience (default: the mesh's trust
// domain), iat and exp = now + ttl (0 means DefaultJWTSVIDTTL; at most
// MaxTokenTTL). id must be in the mesh's trust domain (else
// ErrForeignTrustDomain), and the audience may not contain
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
	td, err := i.trustDomain(ctx, mesh)
	if err != nil {
		return "", time.Time{}, err
	}
	if id.TrustDomain() != td {
		return "", time.Time{}, fmt.Errorf("token: issuing JWT-SVID for %s in mesh %q: %w (%s)", id, mesh, ErrForeignTrustDomain, td.Name())
	}
	if len(audience) == 0 {
		audience = []string{td.Name()}
	}
	ks, err := i.signingKeys(ctx, mesh, KeyJWTSVID)
	if err != nil {
		return "", time.Time{}, err
	}
	now := i.now().Truncate(time.Second)
	exp := now.Add(ttl).UTC()
	std := jwt.Claims{
		Issuer:   i.JWTSVIDIssuer(),
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

// trustDomain returns the mesh's trust domain, cached like the keys (Run
// drops it when the Mesh changes), so that issuing one token per
// destination costs no store read.
func (i *Issuer) trustDomain(ctx context.Context, mesh string) (spiffeid.TrustDomain, error) {
	now := i.now()
	i.mu.Lock()
	e, ok := i.tds[mesh]
	i.mu.Unlock()
	if ok && !now.Before(e.loadedAt) && now.Sub(e.loadedAt) < cacheMaxAge {
		return e.td, nil
	}
	m, err := i.mesh(ctx, mesh)
	if err != nil {
		return spiffeid.TrustDomain{}, err
	}
	s, err := m.TrustDomain()
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("token: trust domain of mesh %q: %w", mesh, err)
	}
	td, err := spiffeid.TrustDomainFromString(s)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("token: trust domain of mesh %q: %w", mesh, err)
	}
	i.mu.Lock()
	if len(i.tds) >= maxCacheEntries {
		clear(i.tds)
	}
	i.tds[mesh] = tdEntry{td: td, loadedAt: now}
	i.mu.Unlock()
	return td, nil
}
