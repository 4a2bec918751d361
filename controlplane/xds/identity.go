package xds

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// identityIssuer gives connected nodes their identity: an X.509 SVID
// (the identity secret) and destination-bound JWT-SVIDs (in the outbound
// filter configuration), installed in the cache and renewed before they
// are due.
type identityIssuer struct {
	cache  *meshCache
	ca     CertificateAuthority
	tokens Tokens
	// shared are the destination-bound JWT-SVIDs, shared by dataplanes of
	// one identity.
	shared         *tokenCache
	now            func() time.Time
	log            *slog.Logger
	maxRouteTokens int
}

func newIdentityIssuer(o Options, cache *meshCache, log *slog.Logger) *identityIssuer {
	return &identityIssuer{cache: cache, ca: o.CA, tokens: o.Tokens, shared: newTokenCache(), now: o.Now, log: log, maxRouteTokens: o.MaxRouteTokens}
}

// renew renews due certificates and tokens of the given connected nodes,
// then forgets the tokens no connected node renewed.
func (i *identityIssuer) renew(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := i.ensure(ctx, id); err != nil {
			i.log.Error("xds: renewing identity", "node", id, "error", err)
		}
	}
	i.shared.sweep(i.now())
}

// ensure issues the node's certificate when it has none, when it is due
// for renewal (at rotateAt of its life) or when its SPIFFE ID changed,
// and its destination-bound JWT-SVIDs: one per destination identity its
// routes attach a token to (aud = that SPIFFE ID), renewed at half-life.
func (i *identityIssuer) ensure(ctx context.Context, id string) error {
	v, ok := i.cache.view(id)
	if !ok {
		return nil
	}
	now := i.now()
	sid, err := spiffeID(v.node.SpiffeID)
	if err != nil {
		return err
	}
	u := identityUpdate{forID: v.node.SpiffeID, tokensFor: v.node.SpiffeID}
	if v.identity == nil || v.identFor != v.node.SpiffeID || !now.Before(v.renewAt) {
		svid, err := i.ca.IssueX509SVID(ctx, v.node.Mesh, sid)
		if err != nil {
			return fmt.Errorf("xds: issuing certificate for %s: %w", id, err)
		}
		if u.secret, err = generate.IdentitySecretResource(svid.CertPEM, svid.KeyPEM); err != nil {
			return err
		}
		u.renewAt = svid.RenewAt
	}
	u.tokens, u.refreshAt, u.setTokens, err = i.routeTokens(ctx, id, v, sid, now)
	if err != nil {
		return fmt.Errorf("xds: issuing JWT-SVIDs for %s: %w", id, err)
	}
	if u.secret != nil || u.setTokens {
		i.cache.setIdentity(id, u)
	}
	return nil
}

// release drops a disconnected node's certificate and tokens.
func (i *identityIssuer) release(id string) { i.cache.releaseIdentity(id) }

func spiffeID(s string) (spiffeid.ID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("xds: SPIFFE ID %q: %w", s, err)
	}
	return id, nil
}
