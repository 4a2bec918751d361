package xds

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// defaultMaxRouteTokens is Options.MaxRouteTokens' default.
const defaultMaxRouteTokens = 256

// tokenKey names one destination-bound JWT-SVID: the caller's identity
// and the destination's. Dataplanes with the same identity share it (a
// JWT-SVID names a workload, not a task).
type tokenKey struct {
	mesh, sub, aud string
}

type sharedToken struct {
	tok       generate.Token
	refreshAt time.Time
}

// tokenCache holds the JWT-SVIDs issued for (caller, destination) pairs,
// each reused until half its life, so that N replicas of a service calling
// M destinations cost M signatures per half-life, not N×M.
type tokenCache struct {
	mu sync.Mutex
	m  map[tokenKey]sharedToken
}

func newTokenCache() *tokenCache { return &tokenCache{m: map[tokenKey]sharedToken{}} }

// get returns the token of k, issuing one when there is none or it is due.
func (c *tokenCache) get(ctx context.Context, tokens Tokens, k tokenKey, sub spiffeid.ID, now time.Time) (sharedToken, error) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Before(e.refreshAt) {
		return e, nil
	}
	raw, exp, err := tokens.IssueJWTSVID(ctx, k.mesh, sub, []string{k.aud}, 0)
	if err != nil {
		return sharedToken{}, err
	}
	e = sharedToken{tok: generate.Token{Value: raw, ExpiresAt: exp}, refreshAt: now.Add(exp.Sub(now) / 2)}
	c.mu.Lock()
	c.m[k] = e
	c.mu.Unlock()
	return e, nil
}

// sweep drops the tokens due for renewal: after a renewal pass over every
// connected dataplane, those are the ones nobody uses any more.
func (c *tokenCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.m, func(_ tokenKey, e sharedToken) bool { return !now.Before(e.refreshAt) })
}

// len reports the number of cached tokens.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// routeTokens returns the JWT-SVIDs node v needs (one per destination
// identity its routes attach a token to, see generate.TokenAudiences),
// when the first is due for renewal, and whether they must be installed
// (false: the node's current ones are still right).
func (i *identityIssuer) routeTokens(ctx context.Context, id string, v nodeView, sub spiffeid.ID, now time.Time) (generate.RouteTokens, time.Time, bool, error) {
	auds, truncated := generate.TokenAudiences(v.mesh, v.node, i.maxRouteTokens)
	if len(auds) == 0 {
		return nil, time.Time{}, len(v.tokens) > 0, nil
	}
	current := v.tokensFor == v.node.SpiffeID && len(v.tokens) == len(auds) && now.Before(v.refreshAt)
	for _, aud := range auds {
		if !current {
			break
		}
		_, current = v.tokens[aud]
	}
	if current {
		return v.tokens, v.refreshAt, false, nil
	}
	toks := make(generate.RouteTokens, len(auds))
	var refreshAt time.Time
	for _, aud := range auds {
		e, err := i.shared.get(ctx, i.tokens, tokenKey{mesh: v.node.Mesh, sub: v.node.SpiffeID, aud: aud}, sub, now)
		if err != nil {
			return nil, time.Time{}, false, err
		}
		toks[aud] = e.tok
		if refreshAt.IsZero() || e.refreshAt.Before(refreshAt) {
			refreshAt = e.refreshAt
		}
	}
	if truncated && len(toks) != len(v.tokens) {
		i.log.Warn("xds: dataplane reaches more destinations than it gets JWT-SVIDs for; routes past the cap attach no token",
			"node", id, "max", i.maxRouteTokens)
	}
	return toks, refreshAt, true, nil
}
