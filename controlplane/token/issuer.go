package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Fixed values of dataplane tokens and JWT-SVIDs.
const (
	// DataplaneTokenAudience is the `aud` of every dataplane token. A
	// JWT-SVID may not be issued for it.
	DataplaneTokenAudience = "ecsmesh-cp"
	// DataplaneTokenIssuer is the `iss` of every dataplane token.
	DataplaneTokenIssuer = "ecsmesh-cp"
	// DataplaneTokenType is the `typ` header of a dataplane token. go-spiffe
	// and every JWT-SVID verifier refuse a typ other than JWT or JOSE, and
	// VerifyDataplaneToken refuses anything but this one, so neither kind
	// of token passes for the other.
	DataplaneTokenType = "ecsmesh-dp+jwt"
	// JWTSVIDType is the `typ` header of a JWT-SVID.
	JWTSVIDType = "JWT"
	// DefaultJWTSVIDIssuer is the `iss` of JWT-SVIDs when Config.IssuerURL
	// is not set. Verifiers (the filter's inbound.jwtIssuer) require it.
	DefaultJWTSVIDIssuer = "ecsmesh-cp/jwt-svid"
	// DefaultJWTSVIDTTL is the lifetime of a JWT-SVID when none is asked.
	DefaultJWTSVIDTTL = time.Hour
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 30 * time.Second
)

const (
	// cacheMaxAge bounds how long a cached key set is used before it is
	// re-read (Run makes changes visible sooner).
	cacheMaxAge = 30 * time.Second
	// missRefreshInterval bounds how often an unknown kid re-reads a mesh's
	// keys, so forged kids cannot hammer the store.
	missRefreshInterval = time.Second
	// maxCacheEntries bounds the cache; negative entries are dropped first.
	maxCacheEntries = 4096
	// maxTokenBytes refuses absurd inputs before any parsing.
	maxTokenBytes = 8 << 10
)

// Config configures an Issuer.
type Config struct {
	// Store keeps the signing keys and the Meshes. Required.
	Store store.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// IssuerURL, when set, is the `iss` of JWT-SVIDs (else
	// DefaultJWTSVIDIssuer) and the issuer the Handler advertises in its
	// OpenID configuration (set it to the public https URL serving
	// /.well-known/* for OIDC federation). A trailing slash is dropped.
	IssuerURL string
}

// Issuer signs and verifies the JWTs of every mesh with per-mesh ES256 keys
// kept in the store. Safe for concurrent use; several Issuers (CP replicas)
// may share one store.
type Issuer struct {
	store     store.Store
	now       func() time.Time
	log       *slog.Logger
	issuerURL string

	mu    sync.Mutex
	cache map[cacheKey]*keySet
	// tds caches each mesh's trust domain (JWT-SVIDs are refused outside it).
	tds map[string]tdEntry
	// public is the published JWKS document (see JWKS).
	public publicJWKS
}

type cacheKey struct {
	mesh    string
	purpose Purpose
}

// New returns an Issuer. Keys are created in the store on first use.
func New(cfg Config) (*Issuer, error) {
	if cfg.Store == nil {
		return nil, errors.New("token: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Issuer{
		store: cfg.Store, now: cfg.Now, log: cfg.Logger, issuerURL: strings.TrimRight(cfg.IssuerURL, "/"),
		cache: map[cacheKey]*keySet{}, tds: map[string]tdEntry{}, public: newPublicJWKS(),
	}, nil
}

// JWTSVIDIssuer is the `iss` of every JWT-SVID this Issuer signs: the
// IssuerURL, or DefaultJWTSVIDIssuer.
func (i *Issuer) JWTSVIDIssuer() string {
	if i.issuerURL != "" {
		return i.issuerURL
	}
	return DefaultJWTSVIDIssuer
}

// Run watches the store and drops cached keys, trust domains and the
// published JWKS as soon as their record changes (another replica rotated
// the keys, a Mesh was created, edited or deleted). It returns when ctx
// ends. Without Run, cached state is re-read every 30 s (and keys on an
// unknown kid).
func (i *Issuer) Run(ctx context.Context) error {
	events, err := i.store.Watch(ctx)
	if err != nil {
		return fmt.Errorf("token: watching signing keys: %w", err)
	}
	for ev := range events {
		switch {
		case ev.Op == 0:
			i.mu.Lock()
			clear(i.cache)
			clear(i.tds)
			i.mu.Unlock()
			i.public.invalidate()
		case ev.Key.Kind == KindSigningKey:
			i.forget(ev.Key.Mesh, Purpose(ev.Key.Name))
			i.public.invalidate()
		case ev.Key.Kind == resource.KindMesh:
			i.mu.Lock()
			delete(i.tds, ev.Key.Name)
			i.mu.Unlock()
			i.public.invalidate()
		}
	}
	return ctx.Err()
}

func (i *Issuer) forget(mesh string, p Purpose) {
	i.mu.Lock()
	delete(i.cache, cacheKey{mesh, p})
	i.mu.Unlock()
}

func typeOf(p Purpose) string {
	if p == KeyDataplaneToken {
		return DataplaneTokenType
	}
	return JWTSVIDType
}

// signingKeys returns the key set of (mesh, p) to sign with, creating the
// keys on first use.
func (i *Issuer) signingKeys(ctx context.Context, mesh string, p Purpose) (*keySet, error) {
	now := i.now()
	ck := cacheKey{mesh, p}
	i.mu.Lock()
	ks := i.cache[ck]
	i.mu.Unlock()
	if ks != nil && ks.current != nil && now.Sub(ks.loadedAt) < cacheMaxAge && !now.Before(ks.loadedAt) {
		return ks, nil
	}
	rec, err := ensureKeyRecord(ctx, i.store, mesh, p, now)
	if err != nil {
		return nil, err
	}
	ks, err = parseKeyRecord(rec, typeOf(p), now)
	if err != nil {
		return nil, err
	}
	i.put(ck, ks)
	return ks, nil
}

// verificationKey finds the public key kid of (mesh, p), reading the store
// when it is not cached (at most once a second per mesh for unknown kids).
// Its errors carry no package prefix: the caller adds it.
func (i *Issuer) verificationKey(ctx context.Context, mesh string, p Purpose, kid string) (*signingKey, error) {
	now := i.now()
	ck := cacheKey{mesh, p}
	i.mu.Lock()
	ks := i.cache[ck]
	i.mu.Unlock()
	fresh := ks != nil && !now.Before(ks.loadedAt) && now.Sub(ks.loadedAt) < cacheMaxAge
	if fresh {
		if k, ok := ks.byKID[kid]; ok {
			return k, nil
		}
		if now.Sub(ks.loadedAt) < missRefreshInterval {
			return nil, fmt.Errorf("unknown key %q for mesh %q", kid, mesh)
		}
	}
	rec, err := i.store.Get(ctx, store.Key{Kind: KindSigningKey, Mesh: mesh, Name: string(p)})
	switch {
	case errors.Is(err, store.ErrNotFound):
		i.put(ck, &keySet{loadedAt: now})
		return nil, fmt.Errorf("mesh %q has no %s key", mesh, p)
	case err != nil:
		return nil, fmt.Errorf("reading keys of mesh %q: %w", mesh, err)
	}
	ks, err = parseKeyRecord(rec, typeOf(p), now)
	if err != nil {
		return nil, err
	}
	i.put(ck, ks)
	k, ok := ks.byKID[kid]
	if !ok {
		return nil, fmt.Errorf("unknown key %q for mesh %q", kid, mesh)
	}
	return k, nil
}

func (i *Issuer) put(ck cacheKey, ks *keySet) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.cache) >= maxCacheEntries {
		for k, v := range i.cache {
			if v.current == nil {
				delete(i.cache, k)
			}
		}
		if len(i.cache) >= maxCacheEntries {
			clear(i.cache)
		}
	}
	i.cache[ck] = ks
}

// RotateKeys gives mesh new dataplane-token and JWT-SVID signing keys. The
// previous JWT-SVID key keeps verifying (and stays in the JWKS) for
// MaxTokenTTL plus a few minutes, until every token it signed has
// expired; the previous dataplane-token key only for the mesh's token TTL
// plus a minute of skew (the longest life of a dataplane token it
// signed), which also cuts short keys retired earlier under a longer TTL.
// It returns the new key IDs. Run it under the CA rotation lease when
// replicas share a store; concurrent rotations are safe but may rotate
// twice.
func (i *Issuer) RotateKeys(ctx context.Context, mesh string) ([]string, error) {
	dpWindow := MaxTokenTTL + retireSkew
	if m, err := i.mesh(ctx, mesh); err == nil {
		dpWindow = min(m.TokenTTL(), MaxTokenTTL) + retireSkew
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var kids []string
	for _, p := range []Purpose{KeyDataplaneToken, KeyJWTSVID} {
		window := MaxTokenTTL + retireSlack
		if p == KeyDataplaneToken {
			window = dpWindow
		}
		kid, err := rotateKeyRecord(ctx, i.store, mesh, p, i.now(), window)
		if err != nil {
			return kids, err
		}
		i.forget(mesh, p)
		i.public.invalidate()
		kids = append(kids, kid)
		i.log.Info("token: rotated signing key", "mesh", mesh, "purpose", string(p), "kid", kid)
	}
	return kids, nil
}

// mesh reads a Mesh from the store.
func (i *Issuer) mesh(ctx context.Context, name string) (*resource.Mesh, error) {
	rec, err := i.store.Get(ctx, store.Key{Kind: resource.KindMesh, Name: name})
	if err != nil {
		return nil, fmt.Errorf("token: reading mesh %q: %w", name, err)
	}
	obj, err := resource.Unmarshal(resource.KindMesh, rec.Spec)
	if err != nil {
		return nil, fmt.Errorf("token: reading mesh %q: %w", name, err)
	}
	m := obj.(*resource.Mesh)
	if m.Name == "" {
		m.Name = name
	}
	return m, nil
}
