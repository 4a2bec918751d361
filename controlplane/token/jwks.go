package token

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/resource"
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

// JWKS returns the JSON Web Key Set of every mesh: the public JWT-SVID and
// dataplane-token keys, current and retired-but-still-valid, each with kid,
// alg ES256 and use sig. Keys are created for stored Meshes that have none
// yet, so a mesh's keys are published before its first token.
func (i *Issuer) JWKS(ctx context.Context) ([]byte, error) {
	meshes, err := i.store.List(ctx, resource.KindMesh, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("token: listing meshes: %w", err)
	}
	have := map[cacheKey]bool{}
	recs, err := i.store.List(ctx, KindSigningKey, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("token: listing signing keys: %w", err)
	}
	for _, r := range recs {
		have[cacheKey{r.Mesh, Purpose(r.Name)}] = true
	}
	now := i.now()
	for _, m := range meshes {
		for _, p := range []Purpose{KeyDataplaneToken, KeyJWTSVID} {
			if have[cacheKey{m.Name, p}] || !resource.ValidMeshName(m.Name) {
				continue
			}
			r, err := ensureKeyRecord(ctx, i.store, m.Name, p, now)
			if err != nil {
				return nil, err
			}
			recs = append(recs, r)
		}
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, r := range recs {
		ks, err := parseKeyRecord(r, typeOf(Purpose(r.Name)), now)
		if err != nil {
			i.log.Error("token: skipping unreadable signing key record", "key", r.Key.String(), "err", err)
			continue
		}
		kids := make([]string, 0, len(ks.byKID))
		kids = append(kids, ks.current.kid)
		for kid := range ks.byKID {
			if kid != ks.current.kid {
				kids = append(kids, kid)
			}
		}
		for _, kid := range kids {
			k := ks.byKID[kid]
			if !k.validAt(now) {
				continue
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: encoding JWKS: %w", err)
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
			i.log.Error("token: serving JWKS", "err", err)
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
