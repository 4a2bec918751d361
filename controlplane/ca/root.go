package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// KindCA is the store kind of the CP's per-mesh CA records (mesh-scoped,
// name RecordName): the roots of the mesh, the active one first, with
// their private keys. Not a user resource.
const KindCA = "CertificateAuthority"

// RecordName is the Name of a mesh's CA record.
const RecordName = "root"

// RootTTL is the lifetime of a root certificate.
const RootTTL = 10 * 365 * 24 * time.Hour

// caDoc is the JSON document of a CA record.
type caDoc struct {
	// Roots[0] signs leaves; the others are retired and stay in the trust
	// bundle until TrustUntil.
	Roots []storedRoot `json:"roots"`
}

type storedRoot struct {
	CertPEM    string     `json:"certPem"`
	KeyPEM     string     `json:"keyPem"`
	CreatedAt  time.Time  `json:"createdAt"`
	RetiredAt  *time.Time `json:"retiredAt,omitempty"`
	TrustUntil *time.Time `json:"trustUntil,omitempty"`
}

// root is a parsed root.
type root struct {
	cert       *x509.Certificate
	key        *ecdsa.PrivateKey
	trustUntil time.Time // zero: the active root
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ca: generating serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

// generateRoot makes a self-signed ECDSA P-256 root for mesh whose URI SAN
// is the trust domain's SPIFFE ID.
func generateRoot(mesh, trustDomain string, now time.Time) (storedRoot, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return storedRoot{}, fmt.Errorf("ca: generating root key of mesh %q: %w", mesh, err)
	}
	serial, err := newSerial()
	if err != nil {
		return storedRoot{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"ecsmesh"},
			CommonName:   fmt.Sprintf("ecsmesh %s root %x", mesh, serial.Bytes()[:4]),
		},
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: trustDomain}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(RootTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return storedRoot{}, fmt.Errorf("ca: self-signing root of mesh %q: %w", mesh, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return storedRoot{}, fmt.Errorf("ca: encoding root key of mesh %q: %w", mesh, err)
	}
	return storedRoot{
		CertPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		CreatedAt: now.UTC(),
	}, nil
}

func parseRoot(sr storedRoot) (*root, error) {
	cb, _ := pem.Decode([]byte(sr.CertPEM))
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing root certificate: %w", err)
	}
	kb, _ := pem.Decode([]byte(sr.KeyPEM))
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("no PKCS#8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing root key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("root key is not ECDSA P-256")
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("root key does not match its certificate")
	}
	r := &root{cert: cert, key: key}
	if sr.TrustUntil != nil {
		r.trustUntil = *sr.TrustUntil
	}
	return r, nil
}

// parseDoc parses every root of a CA record; roots[0] is the active one.
func parseDoc(rec store.Record) ([]*root, error) {
	var doc caDoc
	if err := json.Unmarshal(rec.Spec, &doc); err != nil {
		return nil, fmt.Errorf("ca: decoding %s: %w", rec.Key, err)
	}
	if len(doc.Roots) == 0 {
		return nil, fmt.Errorf("ca: %s holds no root", rec.Key)
	}
	out := make([]*root, 0, len(doc.Roots))
	for i, sr := range doc.Roots {
		r, err := parseRoot(sr)
		if err != nil {
			return nil, fmt.Errorf("ca: decoding root %d of %s: %w", i, rec.Key, err)
		}
		if i == 0 {
			r.trustUntil = time.Time{}
		}
		out = append(out, r)
	}
	return out, nil
}

func caKey(mesh string) store.Key {
	return store.Key{Kind: KindCA, Mesh: mesh, Name: RecordName}
}

// ensureRecord returns the CA record of mesh, creating its root on first
// use. Replicas racing converge on one root: the loser of Create re-reads.
func ensureRecord(ctx context.Context, s store.Store, mesh, trustDomain string, now time.Time) (store.Record, error) {
	key := caKey(mesh)
	rec, err := s.Get(ctx, key)
	if err == nil {
		return rec, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Record{}, fmt.Errorf("ca: reading %s: %w", key, err)
	}
	sr, err := generateRoot(mesh, trustDomain, now)
	if err != nil {
		return store.Record{}, err
	}
	spec, err := json.Marshal(caDoc{Roots: []storedRoot{sr}})
	if err != nil {
		return store.Record{}, fmt.Errorf("ca: encoding %s: %w", key, err)
	}
	rec, err = store.CreateRecord(ctx, s, store.Record{Key: key, Spec: spec})
	if errors.Is(err, store.ErrAlreadyExists) {
		rec, err = s.Get(ctx, key)
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("ca: creating %s: %w", key, err)
	}
	return rec, nil
}

// rotateRecord makes a new active root, keeps the previous one trusted for
// overlap (long enough for every leaf it signed to expire) and drops roots
// past their overlap.
func rotateRecord(ctx context.Context, s store.Store, mesh, trustDomain string, overlap time.Duration, now time.Time) error {
	key := caKey(mesh)
	for attempt := 0; attempt < 5; attempt++ {
		rec, err := s.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			_, err = ensureRecord(ctx, s, mesh, trustDomain, now)
			return err
		}
		if err != nil {
			return fmt.Errorf("ca: reading %s: %w", key, err)
		}
		var doc caDoc
		if err := json.Unmarshal(rec.Spec, &doc); err != nil {
			return fmt.Errorf("ca: decoding %s: %w", key, err)
		}
		sr, err := generateRoot(mesh, trustDomain, now)
		if err != nil {
			return err
		}
		roots := []storedRoot{sr}
		for i, old := range doc.Roots {
			if i == 0 {
				retired, until := now.UTC(), now.Add(overlap).UTC()
				old.RetiredAt, old.TrustUntil = &retired, &until
			}
			if old.TrustUntil != nil && !now.Before(*old.TrustUntil) {
				continue
			}
			roots = append(roots, old)
		}
		spec, err := json.Marshal(caDoc{Roots: roots})
		if err != nil {
			return fmt.Errorf("ca: encoding %s: %w", key, err)
		}
		rec.Spec = spec
		if _, err := store.UpdateRecord(ctx, s, rec); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return fmt.Errorf("ca: rotating %s: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("ca: rotating %s: %w (too many concurrent writers)", key, store.ErrConflict)
}
