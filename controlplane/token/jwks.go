package token

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Well-known paths served by Handler.
const (
	JWKSPath                = "/.well-known/jwks.json"
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
)

// wellKnownMaxAge is the Cache-Control max-age of both documents: short
// enough that a rotated key is published well before it signs for long.
const wellKnownMaxAge = 300

// publicMaxAge bounds how long the published JWKS is served from memory
// before it is rebuilt (RotateKeys and Run rebuild it sooner).
const publicMaxAge = cacheMaxAge

// publicJWKS caches the published JWKS document: the well-known endpoints
// are unauthenticated, so a GET must not cost a store read. One build runs
// at a time; concurrent callers wait for it.
type publicJWKS struct {
	mu    sync.Mutex
	doc   []byte
	until time.Time
	gen   uint64
	build chan struct{} // a one-slot semaphore: held while building
}

func newPublicJWKS() publicJWKS { return publicJWKS{build: make(chan struct{}, 1)} }

// get returns the cached document if it is still fresh at now.
func (p *publicJWKS) get(now time.Time) ([]byte, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.doc != nil && now.Before(p.until) {
		return p.doc, p.gen
	}
	return nil, p.gen
}

// put caches doc unless the cache was invalidated since gen was read.
func (p *publicJWKS) put(doc []byte, until time.Time, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen == gen {
		p.doc, p.until = doc, until
	}
}

// invalidate drops the cached document (keys rotated, meshes changed).
func (p *publicJWKS) invalidate() {
	p.mu.Lock()
	p.doc = nil
	p.gen++
	p.mu.Unlock()
}

// JWKS returns the published JSON Web Key Set: the public JWT-SVID keys
// of every mesh, current and retired-but-still-valid, each with its kid
// (the key's RFC 7638 thumbprint, unique across meshes), alg ES256 and use
// sig. Dataplane-token keys are never published: only the CP verifies
// dataplane tokens. Keys are created for stored Meshes that have none
// yet, so a mesh's keys are published before its first token.
//
// The document is built at most once per 30 s and kept in memory;
// RotateKeys and Run (on any signing-key or Mesh change) drop it at once.
func (i *Issuer) JWKS(ctx context.Context) ([]byte, error) {
	if doc, _ := i.public.get(i.now()); doc != nil {
		return doc, nil
	}
	select {
	case i.public.build <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("token: building JWKS: %w", ctx.Err())
	}
	defer func() { <-i.public.build }()
	// Another caller may have built it while this one waited.
	doc, gen := i.public.get(i.now())
	if doc != nil {
		return doc, nil
	}
	doc, until, err := i.buildJWKS(ctx)
	if err != nil {
		return nil, err
	}
	i.public.put(doc, until, gen)
	return doc, nil
}

// buildJWKS reads every JWT-SVID key from the store and returns the
// document and when it must be rebuilt (publicMaxAge, or sooner when a
// retired key's verification window ends).
func (i *Issuer) buildJWKS(ctx context.Context) ([]byte, time.Time, error) {
	meshes, err := i.store.List(ctx, resource.KindMesh, store.ListOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("token: listing meshes: %w", err)
	}
	recs, err := i.store.List(ctx, KindSigningKey, store.ListOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("token: listing signing keys: %w", err)
	}
	have := map[string]bool{}
	svid := recs[:0]
	for _, r := range recs {
		if Purpose(r.Name) == KeyJWTSVID {
			svid = append(svid, r)
			have[r.Mesh] = true
		}
	}
	now := i.now()
	for _, m := range meshes {
		if have[m.Name] || !resource.ValidMeshName(m.Name) {
			continue
		}
		r, err := ensureKeyRecord(ctx, i.store, m.Name, KeyJWTSVID, now)
		if err != nil {
			return nil, time.Time{}, err
		}
		svid = append(svid, r)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	until := now.Add(publicMaxAge)
	for _, r := range svid {
		ks, err := parseKeyRecord(r, JWTSVIDType, now)
		if err != nil {
			i.log.Error("token: skipping unreadable signing key record", "key", r.Key.String(), "error", err)
			continue
		}
		set.Keys = appendKeys(set.Keys, ks, now)
		for _, k := range ks.byKID {
			if k.validAt(now) && !k.verifyUntil.IsZero() && k.verifyUntil.Before(until) {
				until = k.verifyUntil
			}
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("token: encoding JWKS: %w", err)
	}
	return b, until, nil
}

// appendKeys appends the keys of ks still valid at now, the current one
// first.
func appendKeys(out []jose.JSONWebKey, ks *keySet, now time.Time) []jose.JSONWebKey {
	kids := make([]string, 0, len(ks.byKID))
	kids = append(kids, ks.current.kid)
	for kid := range ks.byKID {
		if kid != ks.current.kid {
			kids = append(kids, kid)
		}
	}
	sort.Strings(kids[1:])
	for _, kid := range kids {
		k := ks.byKID[kid]
		if !k.validAt(now) {
			continue
		}
		out = append(out, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return out
}

// MeshJWKS returns the JSON Web Key Set that verifies the JWT-SVIDs of
// mesh and of no other mesh: its JWT-SVID keys, current and
// retired-but-still-valid, created on first use. The xDS server gives it
// to the mesh's inbound filters. It reads the store on every call.
func (i *Issuer) MeshJWKS(ctx context.Context, mesh string) ([]byte, error) {
	if !resource.ValidMeshName(mesh) {
		return nil, fmt.Errorf("token: JWKS of mesh %q: invalid mesh name", mesh)
	}
	now := i.now()
	rec, err := ensureKeyRecord(ctx, i.store, mesh, KeyJWTSVID, now)
	if err != nil {
		return nil, err
	}
	ks, err := parseKeyRecord(rec, JWTSVIDType, now)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: appendKeys(nil, ks, now)})
	if err != nil {
		return nil, fmt.Errorf("token: encoding JWKS of mesh %q: %w", mesh, err)
	}
	return b, nil
}

// OpenIDConfiguration returns the OIDC discovery document for issuer (an
// https URL without trailing slash): issuer, jwks_uri, the supported
// response and subject types, ES256 as the only signing algorithm and the
// claims JWT-SVIDs carry.
func OpenIDConfiguration(issuer string) []byte {
	issuer = strings.TrimRight(issuer, "/")
	doc := struct {
		Issuer                           string   `json:"issuer"`
		JWKSURI                          string   `json:"jwks_uri"`
		ResponseTypesSupported           []string `json:"response_types_supported"`
		SubjectTypesSupported            []string `json:"subject_types_supported"`
		IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
		ClaimsSupported                  []string `json:"claims_supported"`
	}{
		Issuer:                           issuer,
		JWKSURI:                          issuer + JWKSPath,
		ResponseTypesSupported:           []string{"id_token"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{string(jose.ES256)},
		ClaimsSupported:                  []string{"sub", "aud", "exp", "iat", "iss"},
	}
	b, _ := json.Marshal(doc) // cannot fail: strings only
	return b
}

// Handler serves JWKSPath and OpenIDConfigurationPath (GET and HEAD) with
// a Cache-Control max-age. The OpenID configuration advertises the
// IssuerURL, or, when none is configured, the scheme and host of the
// request.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, r *http.Request) {
		b, err := i.JWKS(r.Context())
		if err != nil {
			i.log.Error("token: serving JWKS", "error", err)
			problem.Write(w, problem.New(http.StatusServiceUnavailable, "store_unavailable", "Keys unavailable", "the signing keys cannot be read"))
			return
		}
		writeWellKnown(w, "application/jwk-set+json", b)
	})
	mux.HandleFunc("GET "+OpenIDConfigurationPath, func(w http.ResponseWriter, r *http.Request) {
		issuer := i.issuerURL
		if issuer == "" {
			scheme := "https"
			if r.TLS == nil {
				scheme = "http"
			}
			issuer = scheme + "://" + r.Host
		}
		writeWellKnown(w, "application/json", OpenIDConfiguration(issuer))
	})
	return mux
}

func writeWellKnown(w http.ResponseWriter, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", wellKnownMaxAge))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}
