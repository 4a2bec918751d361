package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func putMesh(t testing.TB, s store.Store, m *resource.Mesh) {
	t.Helper()
	m.Type = resource.KindMesh
	b, err := resource.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertRecord(context.Background(), s, store.Record{Key: store.Key{Kind: resource.KindMesh, Name: m.Name}, Spec: b}); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	store *memory.Store
	clock *clock
	ca    *Authority
}

// newFixture stores three meshes: default (certTTL 10m, rotateAt 0.5),
// other (defaults) and evil, whose trust domain impersonates default's.
func newFixture(t testing.TB, now func() time.Time) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if now == nil {
		now = c.Now
	}
	s := memory.New(now)
	ttl := resource.Duration{Duration: 10 * time.Minute}
	half := 0.5
	putMesh(t, s, &resource.Mesh{Meta: resource.Meta{Name: "default"}, MTLS: &resource.MeshMTLS{CertTTL: &ttl, RotateAt: &half}})
	putMesh(t, s, &resource.Mesh{Meta: resource.Meta{Name: "other"}})
	putMesh(t, s, &resource.Mesh{Meta: resource.Meta{Name: "evil"}, MTLS: &resource.MeshMTLS{TrustDomain: "default.mesh.local"}})
	a, err := New(Config{Store: s, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, clock: c, ca: a}
}

func mustID(t testing.TB, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) issue(t testing.TB, mesh, id string) *SVID {
	t.Helper()
	s, err := f.ca.IssueX509SVID(context.Background(), mesh, mustID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) bundle(t testing.TB, mesh string) *Bundle {
	t.Helper()
	b, err := f.ca.Bundle(context.Background(), mesh)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const webID = "spiffe://default.mesh.local/workload/web"

func TestIssueX509SVID(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	svid := f.issue(t, "default", webID)
	if len(svid.CertChain) != 1 {
		t.Fatalf("chain length %d", len(svid.CertChain))
	}
	leaf := svid.CertChain[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != webID {
		t.Fatalf("URI SANs = %v", leaf.URIs)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Fatal("leaf carries SANs other than the SPIFFE ID")
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Fatalf("IsCA %v, KeyUsage %v", leaf.IsCA, leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 2 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() || !pub.Equal(svid.Key.Public()) {
		t.Fatal("leaf key is not the returned ECDSA P-256 key")
	}
	if !leaf.NotBefore.Equal(now.Add(-Backdate)) || !leaf.NotAfter.Equal(now.Add(10*time.Minute)) || !svid.ExpiresAt.Equal(leaf.NotAfter) {
		t.Fatalf("validity %s..%s", leaf.NotBefore, leaf.NotAfter)
	}
	if want := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2); !svid.RenewAt.Equal(want) {
		t.Fatalf("RenewAt %s, want %s", svid.RenewAt, want)
	}
	b := f.bundle(t, "default")
	if b.TrustDomain.Name() != "default.mesh.local" || len(b.Roots) != 1 || !strings.Contains(string(b.PEM), "BEGIN CERTIFICATE") {
		t.Fatalf("bundle %+v", b)
	}
	root := b.Roots[0]
	if !root.IsCA || root.PublicKeyAlgorithm != x509.ECDSA || root.Subject.String() == leaf.Subject.String() {
		t.Fatal("root is not an ECDSA CA")
	}
	id, _, err := x509svid.Verify(svid.CertChain, b.X509, x509svid.WithTime(now))
	if err != nil || id.String() != webID {
		t.Fatalf("x509svid.Verify = %v, %v", id, err)
	}
	// The PEM forms are a valid SVID for go-spiffe.
	parsed, err := x509svid.Parse(svid.CertPEM, svid.KeyPEM)
	if err != nil || parsed.ID.String() != webID {
		t.Fatalf("x509svid.Parse = %v, %v", parsed, err)
	}
	// Expired leaves no longer verify.
	if _, _, err := x509svid.Verify(svid.CertChain, b.X509, x509svid.WithTime(now.Add(11*time.Minute))); err == nil {
		t.Fatal("expired leaf verified")
	}
	// Default certTTL is 1h.
	o := f.issue(t, "other", "spiffe://other.mesh.local/workload/db")
	if got := o.ExpiresAt.Sub(now); got != time.Hour {
		t.Fatalf("default lifetime %s", got)
	}
}

func TestIssueX509SVIDRefusals(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, mesh string
		id         spiffeid.ID
	}{
		{"unknown mesh", "ghost", mustID(t, webID)},
		{"invalid mesh", "Bad_Mesh", mustID(t, webID)},
		{"empty mesh", "", mustID(t, webID)},
		{"zero ID", "default", spiffeid.ID{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.ca.IssueX509SVID(context.Background(), tc.mesh, tc.id)
			if err == nil || !strings.HasPrefix(err.Error(), "ca: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestIssueX509SVIDOutsideTrustDomain: a mesh's CA signs only SPIFFE IDs
// of its own trust domain. A MeshIdentity whose trustDomain template
// renders another mesh's (or a partner's) trust domain, for instance from
// a label the sidecar wrote, must not get a certificate that peers of the
// mesh would see as that identity.
func TestIssueX509SVIDOutsideTrustDomain(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct{ mesh, id string }{
		{"default", "spiffe://other.mesh.local/workload/db"},
		{"default", "spiffe://partner.example/workload/web"},
		{"default", "spiffe://default.mesh.local.evil.example/workload/web"},
		{"other", webID},
	} {
		t.Run(tc.mesh+" "+tc.id, func(t *testing.T) {
			s, err := f.ca.IssueX509SVID(context.Background(), tc.mesh, mustID(t, tc.id))
			if err == nil {
				t.Fatalf("mesh %s signed %s (URI SAN %v)", tc.mesh, tc.id, s.CertChain[0].URIs)
			}
			if !strings.HasPrefix(err.Error(), "ca: ") || !errors.Is(err, ErrForeignTrustDomain) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// Its own trust domain, whatever the path, is fine.
	f.issue(t, "default", "spiffe://default.mesh.local/team/payments/api")
	f.issue(t, "evil", webID) // evil's trust domain is default.mesh.local by configuration
}

func TestOtherMeshLeafRefused(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	b := f.bundle(t, "default")
	// evil's trust domain impersonates default's: same SPIFFE ID, other CA.
	for _, mesh := range []string{"evil", "other"} {
		id := webID
		if mesh == "other" {
			id = "spiffe://other.mesh.local/workload/web"
		}
		s := f.issue(t, mesh, id)
		if _, _, err := x509svid.Verify(s.CertChain, b.X509, x509svid.WithTime(now)); err == nil {
			t.Fatalf("leaf of mesh %s verified against default's bundle", mesh)
		}
	}
}

func TestReplicasConvergeOnOneRoot(t *testing.T) {
	f := newFixture(t, nil)
	const replicas = 8
	roots := make([]*x509.Certificate, replicas)
	var wg sync.WaitGroup
	for r := range replicas {
		a, err := New(Config{Store: f.store, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := a.Bundle(context.Background(), "default")
			if err != nil {
				t.Error(err)
				return
			}
			roots[r] = b.Roots[0]
		}()
	}
	wg.Wait()
	for _, r := range roots {
		if r == nil || !r.Equal(roots[0]) {
			t.Fatal("replicas created different roots")
		}
	}
}

func TestRotationOverlap(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	oldLeaf := f.issue(t, "default", webID)
	oldRoot := f.bundle(t, "default").Roots[0]
	f.clock.Advance(time.Minute)
	if err := f.ca.Rotate(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	newLeaf := f.issue(t, "default", webID)
	b := f.bundle(t, "default")
	if len(b.Roots) != 2 || !b.Roots[1].Equal(oldRoot) || b.Roots[0].Equal(oldRoot) {
		t.Fatalf("bundle during overlap has %d roots", len(b.Roots))
	}
	if err := newLeaf.CertChain[0].CheckSignatureFrom(b.Roots[0]); err != nil {
		t.Fatalf("new leaf not signed by the new root: %v", err)
	}
	now := f.clock.Now()
	for name, s := range map[string]*SVID{"old root's leaf": oldLeaf, "new root's leaf": newLeaf} {
		if _, _, err := x509svid.Verify(s.CertChain, b.X509, x509svid.WithTime(now)); err != nil {
			t.Fatalf("%s during overlap: %v", name, err)
		}
	}
	// A replica that cached the old root picks the new one up.
	replica, _ := New(Config{Store: f.store, Now: f.clock.Now})
	if got := len(f.bundleOf(t, replica)); got != 2 {
		t.Fatalf("replica bundle has %d roots", got)
	}
	// Once every leaf of the old root has expired, the old root goes.
	f.clock.Advance(10*time.Minute + overlapSlack)
	b = f.bundle(t, "default")
	if len(b.Roots) != 1 || b.Roots[0].Equal(oldRoot) {
		t.Fatalf("bundle after overlap has %d roots", len(b.Roots))
	}
	if err := f.ca.Rotate(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	rec, err := f.store.Get(ctx, caKey("default"))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := parseDoc(rec)
	if err != nil || len(roots) != 2 {
		t.Fatalf("roots after second rotation: %d, %v (expired root not pruned)", len(roots), err)
	}
}

func (f *fixture) bundleOf(t *testing.T, a *Authority) []*x509.Certificate {
	t.Helper()
	b, err := a.Bundle(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	return b.Roots
}

func TestRunFollowsMeshChanges(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.ca.Run(ctx) }()
	f.issue(t, "default", webID)
	deadline := time.Now().Add(5 * time.Second)
	for ttl := 11; ; ttl++ {
		d := resource.Duration{Duration: time.Duration(ttl) * time.Minute}
		putMesh(t, f.store, &resource.Mesh{Meta: resource.Meta{Name: "default"}, MTLS: &resource.MeshMTLS{CertTTL: &d}})
		time.Sleep(20 * time.Millisecond)
		if s := f.issue(t, "default", webID); s.ExpiresAt.Sub(f.clock.Now()) == d.Duration {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("certTTL change not followed")
		}
	}
	cancel()
	<-done
}

func BenchmarkIssueX509SVID(b *testing.B) {
	f := newFixture(b, nil)
	id := mustID(b, webID)
	ctx := context.Background()
	if _, err := f.ca.IssueX509SVID(ctx, "default", id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.ca.IssueX509SVID(ctx, "default", id); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "SVIDs/s")
}
