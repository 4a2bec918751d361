// Package ca is the built-in certificate authority of each mesh: an ECDSA
// P-256 root per mesh, kept with its key in the store, that signs
// short-lived X.509 SVIDs, and root rotation with an overlap during which
// old and new roots are both in the trust bundle.
package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

const (
	// Backdate is how far before issuance a leaf's NotBefore lies, for
	// peers whose clocks run behind.
	Backdate = time.Minute
	// cacheMaxAge bounds how long a mesh's settings and roots are used
	// before they are re-read (Run makes changes visible sooner).
	cacheMaxAge = 30 * time.Second
	// overlapSlack is added to the overlap of a retired root: backdating,
	// clock skew and replicas still signing from a stale cache.
	overlapSlack = Backdate + cacheMaxAge + 5*time.Minute
)

// ErrForeignTrustDomain is returned (wrapped) when an SVID is asked for a
// SPIFFE ID outside the mesh's trust domain.
var ErrForeignTrustDomain = errors.New("the SPIFFE ID is outside the mesh's trust domain")

// Config configures an Authority.
type Config struct {
	// Store keeps the roots and the Meshes. Required.
	Store store.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Authority issues the X.509 SVIDs of every mesh. Safe for concurrent use;
// several Authorities (CP replicas) may share one store.
type Authority struct {
	store store.Store
	now   func() time.Time
	log   *slog.Logger

	mu    sync.RWMutex
	cache map[string]*meshCA
}

// meshCA is the cached state of one mesh: its settings and parsed roots.
type meshCA struct {
	loadedAt    time.Time
	certTTL     time.Duration
	rotateAt    float64
	trustDomain spiffeid.TrustDomain
	roots       []*root // roots[0] signs
	bundle      *Bundle
}

// SVID is an issued X.509 SVID.
type SVID struct {
	// ID is the SPIFFE ID, the leaf's only URI SAN.
	ID spiffeid.ID
	// CertChain is the leaf (signed directly by the mesh root, which is in
	// the bundle, not in the chain).
	CertChain []*x509.Certificate
	// Key is the leaf's ECDSA P-256 private key.
	Key crypto.Signer
	// CertPEM is CertChain in PEM; KeyPEM is Key in PKCS#8 PEM.
	CertPEM []byte
	KeyPEM  []byte
	// ExpiresAt is the leaf's NotAfter.
	ExpiresAt time.Time
	// RenewAt is NotBefore + rotateAt × lifetime: when to issue the next.
	RenewAt time.Time
}

// Bundle is the trust bundle of a mesh: every root a valid leaf may chain
// to (the active one first, then retired ones still in overlap).
type Bundle struct {
	// TrustDomain is the mesh's trust domain.
	TrustDomain spiffeid.TrustDomain
	// Roots are the root certificates.
	Roots []*x509.Certificate
	// PEM is Roots in PEM, for SDS validation contexts.
	PEM []byte
	// X509 is the go-spiffe form, for tlsconfig and x509svid.Verify.
	X509 *x509bundle.Bundle
}

// New returns an Authority. Roots are created in the store on first use.
func New(cfg Config) (*Authority, error) {
	if cfg.Store == nil {
		return nil, errors.New("ca: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Authority{store: cfg.Store, now: cfg.Now, log: cfg.Logger, cache: map[string]*meshCA{}}, nil
}

// Run watches the store and drops a mesh's cached state as soon as its
// Mesh or CA record changes (settings edited, another replica rotated). It
// returns when ctx ends. Without Run, cached state is re-read every 30 s.
func (a *Authority) Run(ctx context.Context) error {
	events, err := a.store.Watch(ctx)
	if err != nil {
		return fmt.Errorf("ca: watching roots: %w", err)
	}
	for ev := range events {
		switch {
		case ev.Op == 0:
			a.mu.Lock()
			clear(a.cache)
			a.mu.Unlock()
		case ev.Key.Kind == KindCA:
			a.forget(ev.Key.Mesh)
		case ev.Key.Kind == resource.KindMesh:
			a.forget(ev.Key.Name)
		}
	}
	return ctx.Err()
}

func (a *Authority) forget(mesh string) {
	a.mu.Lock()
	delete(a.cache, mesh)
	a.mu.Unlock()
}

// meshSettings reads a Mesh from the store.
func (a *Authority) meshSettings(ctx context.Context, name string) (*resource.Mesh, spiffeid.TrustDomain, error) {
	rec, err := a.store.Get(ctx, store.Key{Kind: resource.KindMesh, Name: name})
	if err != nil {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("ca: reading mesh %q: %w", name, err)
	}
	obj, err := resource.Unmarshal(resource.KindMesh, rec.Spec)
	if err != nil {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("ca: reading mesh %q: %w", name, err)
	}
	m := obj.(*resource.Mesh)
	m.Name = name
	tds, err := m.TrustDomain()
	if err != nil {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("ca: trust domain of mesh %q: %w", name, err)
	}
	td, err := spiffeid.TrustDomainFromString(tds)
	if err != nil {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("ca: trust domain of mesh %q: %w", name, err)
	}
	return m, td, nil
}

// meshCA returns the cached state of mesh, loading it (and creating the
// root on first use) when absent or older than cacheMaxAge.
func (a *Authority) meshCA(ctx context.Context, mesh string) (*meshCA, error) {
	now := a.now()
	a.mu.RLock()
	mc := a.cache[mesh]
	a.mu.RUnlock()
	if mc != nil && !now.Before(mc.loadedAt) && now.Sub(mc.loadedAt) < cacheMaxAge {
		return mc, nil
	}
	if !resource.ValidMeshName(mesh) {
		return nil, fmt.Errorf("ca: invalid mesh name %q", mesh)
	}
	m, td, err := a.meshSettings(ctx, mesh)
	if err != nil {
		return nil, err
	}
	rec, err := ensureRecord(ctx, a.store, mesh, td.Name(), now)
	if err != nil {
		return nil, err
	}
	roots, err := parseDoc(rec)
	if err != nil {
		return nil, err
	}
	mc = &meshCA{loadedAt: now, certTTL: m.CertTTL(), rotateAt: m.RotateAt(), trustDomain: td, roots: roots}
	mc.bundle = newBundle(td, roots, now)
	a.mu.Lock()
	a.cache[mesh] = mc
	a.mu.Unlock()
	return mc, nil
}

func newBundle(td spiffeid.TrustDomain, roots []*root, now time.Time) *Bundle {
	b := &Bundle{TrustDomain: td}
	for _, r := range roots {
		if !r.trustUntil.IsZero() && !now.Before(r.trustUntil) {
			continue
		}
		b.Roots = append(b.Roots, r.cert)
		b.PEM = append(b.PEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.cert.Raw})...)
	}
	b.X509 = x509bundle.FromX509Authorities(td, b.Roots)
	return b
}

// Bundle returns the trust bundle of mesh: its active root and the retired
// roots still in overlap. The Mesh must exist; its root is created on
// first use.
func (a *Authority) Bundle(ctx context.Context, mesh string) (*Bundle, error) {
	mc, err := a.meshCA(ctx, mesh)
	if err != nil {
		return nil, err
	}
	if now := a.now(); mc.hasExpiredRoot(now) {
		return newBundle(mc.trustDomain, mc.roots, now), nil
	}
	return mc.bundle, nil
}

func (mc *meshCA) hasExpiredRoot(now time.Time) bool {
	for _, r := range mc.roots[1:] {
		if !now.Before(r.trustUntil) {
			return true
		}
	}
	return false
}

// IssueX509SVID signs an X.509 SVID for id with mesh's active root: a
// fresh ECDSA P-256 key; exactly one URI SAN, id; KeyUsage
// digitalSignature; ExtKeyUsage serverAuth and clientAuth; NotBefore
// Backdate before now; NotAfter now + the Mesh's mtls.certTTL (never past
// the root's). id must be in the mesh's trust domain (its mtls.trustDomain),
// else ErrForeignTrustDomain: a mesh's root vouches for its own trust domain
// only, whatever a MeshIdentity template renders. Mesh settings and the
// root key are cached: no store access per certificate.
func (a *Authority) IssueX509SVID(ctx context.Context, mesh string, id spiffeid.ID) (*SVID, error) {
	if id.IsZero() {
		return nil, fmt.Errorf("ca: issuing X.509 SVID in mesh %q: empty SPIFFE ID", mesh)
	}
	mc, err := a.meshCA(ctx, mesh)
	if err != nil {
		return nil, err
	}
	if id.TrustDomain() != mc.trustDomain {
		return nil, fmt.Errorf("ca: issuing X.509 SVID for %s in mesh %q: %w (%s); a MeshIdentity's spiffeID.trustDomain must render to the mesh's mtls.trustDomain",
			id, mesh, ErrForeignTrustDomain, mc.trustDomain.Name())
	}
	signer := mc.roots[0]
	now := a.now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generating key for %s: %w", id, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notBefore, notAfter := now.Add(-Backdate).Truncate(time.Second), now.Add(mc.certTTL).Truncate(time.Second)
	if notAfter.After(signer.cert.NotAfter) {
		notAfter = signer.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"ecsmesh"}, OrganizationalUnit: []string{mesh}},
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, &key.PublicKey, signer.key)
	if err != nil {
		return nil, fmt.Errorf("ca: signing X.509 SVID for %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing X.509 SVID for %s: %w", id, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: encoding key for %s: %w", id, err)
	}
	life := notAfter.Sub(notBefore)
	return &SVID{
		ID:        id,
		CertChain: []*x509.Certificate{leaf},
		Key:       key,
		CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		ExpiresAt: notAfter,
		RenewAt:   notBefore.Add(time.Duration(mc.rotateAt * float64(life))),
	}, nil
}

// Rotate gives mesh a new root. From then on leaves are signed by the new
// root; the previous root stays in the bundle for the mesh's certTTL plus
// a few minutes, until no leaf it signed can still be valid, and is then
// dropped. Run it under the CA rotation lease when replicas share a store.
func (a *Authority) Rotate(ctx context.Context, mesh string) error {
	if !resource.ValidMeshName(mesh) {
		return fmt.Errorf("ca: invalid mesh name %q", mesh)
	}
	m, td, err := a.meshSettings(ctx, mesh)
	if err != nil {
		return err
	}
	if err := rotateRecord(ctx, a.store, mesh, td.Name(), m.CertTTL()+overlapSlack, a.now()); err != nil {
		return err
	}
	a.forget(mesh)
	a.log.Info("ca: rotated root", "mesh", mesh)
	return nil
}
