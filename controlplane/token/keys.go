package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// KindSigningKey is the store kind of the CP's own signing-key records:
// mesh-scoped, one record per key purpose (KeyDataplaneToken, KeyJWTSVID),
// holding the current private key and the retired ones still needed for
// verification. Not a user resource: never served by the resources API.
const KindSigningKey = "SigningKey"

// Purpose names a signing key of a mesh; it is the Name of its record.
type Purpose string

// Key purposes. Each mesh has one key set per purpose, so that a token of
// one purpose can never verify as the other.
const (
	// KeyDataplaneToken signs dataplane tokens.
	KeyDataplaneToken Purpose = "dataplane-token"
	// KeyJWTSVID signs JWT-SVIDs.
	KeyJWTSVID Purpose = "jwt-svid"
)

// MaxTokenTTL caps the lifetime of every token this package signs. A
// retired JWT-SVID key stays valid for verification for MaxTokenTTL plus
// retireSlack, so that every token it signed expires first; a retired
// dataplane-token key only for its mesh's token TTL plus retireSkew.
const MaxTokenTTL = 24 * time.Hour

// retireSlack covers clock skew, verification leeway and replicas whose
// cache still signs with a key another replica just retired.
const retireSlack = 5 * time.Minute

// retireSkew is what a retired dataplane-token key verifies beyond the
// mesh's token TTL: the verification leeway, and the cache age of a
// replica that still signs with the key until it re-reads the record.
const retireSkew = Leeway + cacheMaxAge

// keyDoc is the JSON document of a SigningKey record.
type keyDoc struct {
	// Keys[0] is the current signing key; the others are retired.
	Keys []storedKey `json:"keys"`
}

// storedKey is one key of a keyDoc.
type storedKey struct {
	KID           string     `json:"kid"`
	PrivateKeyPEM string     `json:"privateKeyPem"`
	CreatedAt     time.Time  `json:"createdAt"`
	RetiredAt     *time.Time `json:"retiredAt,omitempty"`
	VerifyUntil   *time.Time `json:"verifyUntil,omitempty"`
}

// signingKey is a parsed key.
type signingKey struct {
	kid         string
	priv        *ecdsa.PrivateKey
	pub         *ecdsa.PublicKey
	verifyUntil time.Time // zero: no limit (current key)
}

// validAt reports whether the key may still verify tokens at now.
func (k *signingKey) validAt(now time.Time) bool {
	return k.verifyUntil.IsZero() || now.Before(k.verifyUntil)
}

// keySet is the parsed, cached content of one SigningKey record.
type keySet struct {
	version  int64
	loadedAt time.Time
	current  *signingKey // nil for a negative cache entry (no record)
	byKID    map[string]*signingKey
	signer   jose.Signer
}

func generateKey(now time.Time) (storedKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return storedKey{}, fmt.Errorf("token: generating ES256 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storedKey{}, fmt.Errorf("token: encoding ES256 key: %w", err)
	}
	kid, err := keyID(&priv.PublicKey)
	if err != nil {
		return storedKey{}, err
	}
	return storedKey{
		KID:           kid,
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		CreatedAt:     now.UTC(),
	}, nil
}

// keyID is the RFC 7638 SHA-256 thumbprint of the public key, base64url:
// unique across meshes and stable.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("token: computing key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

func parseStoredKey(sk storedKey) (*signingKey, error) {
	block, _ := pem.Decode([]byte(sk.PrivateKeyPEM))
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("token: key %s: no PKCS#8 PEM block", sk.KID)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token: parsing key %s: %w", sk.KID, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token: key %s is not an ECDSA P-256 key", sk.KID)
	}
	kid, err := keyID(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	if kid != sk.KID {
		return nil, fmt.Errorf("token: key %s: kid does not match the key's thumbprint", sk.KID)
	}
	out := &signingKey{kid: kid, priv: priv, pub: &priv.PublicKey}
	if sk.VerifyUntil != nil {
		out.verifyUntil = *sk.VerifyUntil
	}
	return out, nil
}

// parseKeyRecord turns a stored record into a keySet ready to sign (with
// typ header typ) and verify.
func parseKeyRecord(rec store.Record, typ string, now time.Time) (*keySet, error) {
	var doc keyDoc
	if err := json.Unmarshal(rec.Spec, &doc); err != nil {
		return nil, fmt.Errorf("token: decoding %s: %w", rec.Key, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("token: %s holds no key", rec.Key)
	}
	ks := &keySet{version: rec.Version, loadedAt: now, byKID: map[string]*signingKey{}}
	for i, sk := range doc.Keys {
		k, err := parseStoredKey(sk)
		if err != nil {
			return nil, fmt.Errorf("token: decoding %s: %w", rec.Key, err)
		}
		if i == 0 {
			k.verifyUntil = time.Time{}
			ks.current = k
		}
		ks.byKID[k.kid] = k
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ks.current.priv, KeyID: ks.current.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		return nil, fmt.Errorf("token: building signer for %s: %w", rec.Key, err)
	}
	ks.signer = signer
	return ks, nil
}

// ensureKeyRecord returns the SigningKey record of (mesh, purpose),
// creating it on first use. Two replicas racing converge on one key: the
// loser of Create re-reads the winner's record.
func ensureKeyRecord(ctx context.Context, s store.Store, mesh string, p Purpose, now time.Time) (store.Record, error) {
	key := store.Key{Kind: KindSigningKey, Mesh: mesh, Name: string(p)}
	rec, err := s.Get(ctx, key)
	if err == nil {
		return rec, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Record{}, fmt.Errorf("token: reading %s: %w", key, err)
	}
	sk, err := generateKey(now)
	if err != nil {
		return store.Record{}, err
	}
	spec, err := json.Marshal(keyDoc{Keys: []storedKey{sk}})
	if err != nil {
		return store.Record{}, fmt.Errorf("token: encoding %s: %w", key, err)
	}
	rec, err = store.CreateRecord(ctx, s, store.Record{Key: key, Spec: spec})
	if errors.Is(err, store.ErrAlreadyExists) {
		rec, err = s.Get(ctx, key)
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("token: creating %s: %w", key, err)
	}
	return rec, nil
}

// rotateKeyRecord makes a new current key for (mesh, purpose), retires the
// previous one (kept for verification for window: the longest life of a
// token it may have signed, plus skew), shortens the windows of keys
// retired earlier to window from their retirement, and drops retired keys
// past their verification window.
func rotateKeyRecord(ctx context.Context, s store.Store, mesh string, p Purpose, now time.Time, window time.Duration) (string, error) {
	key := store.Key{Kind: KindSigningKey, Mesh: mesh, Name: string(p)}
	for attempt := 0; attempt < 5; attempt++ {
		rec, err := s.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			rec, err = ensureKeyRecord(ctx, s, mesh, p, now)
			if err != nil {
				return "", err
			}
			var doc keyDoc
			if err := json.Unmarshal(rec.Spec, &doc); err != nil || len(doc.Keys) == 0 {
				return "", fmt.Errorf("token: decoding %s: %v", key, err)
			}
			return doc.Keys[0].KID, nil
		}
		if err != nil {
			return "", fmt.Errorf("token: reading %s: %w", key, err)
		}
		var doc keyDoc
		if err := json.Unmarshal(rec.Spec, &doc); err != nil {
			return "", fmt.Errorf("token: decoding %s: %w", key, err)
		}
		sk, err := generateKey(now)
		if err != nil {
			return "", err
		}
		keys := []storedKey{sk}
		for i, old := range doc.Keys {
			if i == 0 {
				retired, until := now.UTC(), now.Add(window).UTC()
				old.RetiredAt, old.VerifyUntil = &retired, &until
			} else if old.RetiredAt != nil && (old.VerifyUntil == nil || old.RetiredAt.Add(window).Before(*old.VerifyUntil)) {
				until := old.RetiredAt.Add(window).UTC()
				old.VerifyUntil = &until
			}
			if old.VerifyUntil != nil && !now.Before(*old.VerifyUntil) {
				continue
			}
			keys = append(keys, old)
		}
		spec, err := json.Marshal(keyDoc{Keys: keys})
		if err != nil {
			return "", fmt.Errorf("token: encoding %s: %w", key, err)
		}
		rec.Spec = spec
		if _, err := store.UpdateRecord(ctx, s, rec); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return "", fmt.Errorf("token: rotating %s: %w", key, err)
		}
		return sk.KID, nil
	}
	return "", fmt.Errorf("token: rotating %s: %w (too many concurrent writers)", key, store.ErrConflict)
}
