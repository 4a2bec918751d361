package ca

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// RootStatus is the public side of a mesh's active root, for read-only
// views: never its key.
type RootStatus struct {
	// Subject is the root's common name; NotAfter when it expires.
	Subject  string
	NotAfter time.Time
	// Roots counts the roots in the trust bundle (the active one and the
	// retired ones still trusted).
	Roots int
}

// ReadRootStatus reads a mesh's CA record without creating a root (the
// first certificate issued creates it): ok is false when the mesh has none
// yet. Only the certificates are parsed.
func ReadRootStatus(ctx context.Context, st store.Store, mesh string) (RootStatus, bool, error) {
	rec, err := st.Get(ctx, store.Key{Kind: KindCA, Mesh: mesh, Name: RecordName})
	if errors.Is(err, store.ErrNotFound) {
		return RootStatus{}, false, nil
	}
	if err != nil {
		return RootStatus{}, false, fmt.Errorf("ca: reading the CA record of mesh %s: %w", mesh, err)
	}
	var doc caDoc
	if err := json.Unmarshal(rec.Spec, &doc); err != nil || len(doc.Roots) == 0 {
		return RootStatus{}, false, fmt.Errorf("ca: the CA record of mesh %s is unreadable", mesh)
	}
	block, _ := pem.Decode([]byte(doc.Roots[0].CertPEM))
	if block == nil {
		return RootStatus{}, false, fmt.Errorf("ca: the active root of mesh %s is not PEM", mesh)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return RootStatus{}, false, fmt.Errorf("ca: parsing the active root of mesh %s: %w", mesh, err)
	}
	return RootStatus{Subject: cert.Subject.CommonName, NotAfter: cert.NotAfter, Roots: len(doc.Roots)}, true, nil
}
