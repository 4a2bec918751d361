package ca

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// goSVID turns an issued SVID into go-spiffe's, through its PEM forms.
func goSVID(t *testing.T, s *SVID) *x509svid.SVID {
	t.Helper()
	out, err := x509svid.Parse(s.CertPEM, s.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// handshake runs a real TLS handshake and one round trip over loopback
// between a server holding serverSVID that trusts serverBundle and
// authorizes wantClient, and a client holding clientSVID that trusts
// clientBundle and authorizes wantServer. It returns the first error of
// either side.
func handshake(t *testing.T, serverSVID, clientSVID *SVID, serverBundle, clientBundle *Bundle, wantClient, wantServer spiffeid.ID) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	scfg := tlsconfig.MTLSServerConfig(goSVID(t, serverSVID), serverBundle.X509, tlsconfig.AuthorizeID(wantClient))
	scfg.MinVersion = tls.VersionTLS13
	ccfg := tlsconfig.MTLSClientConfig(goSVID(t, clientSVID), clientBundle.X509, tlsconfig.AuthorizeID(wantServer))
	ccfg.MinVersion = tls.VersionTLS13

	serr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serr <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, scfg)
		if err := tc.Handshake(); err != nil {
			serr <- err
			return
		}
		if tc.ConnectionState().Version != tls.VersionTLS13 {
			serr <- errors.New("not TLS 1.3")
			return
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil {
			serr <- err
			return
		}
		_, err = tc.Write(buf)
		serr <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, ccfg)
	cerr := tc.Handshake()
	if cerr == nil {
		if _, err := tc.Write([]byte("ping")); err != nil {
			cerr = err
		} else if _, err := io.ReadFull(tc, make([]byte, 4)); err != nil {
			cerr = err
		}
	}
	c.Close()
	if err := <-serr; err != nil {
		return err
	}
	return cerr
}

func TestMTLSHandshake(t *testing.T) {
	// TLS verification uses the wall clock.
	f := newFixture(t, time.Now)
	web, db := mustID(t, webID), mustID(t, "spiffe://default.mesh.local/workload/db")
	webSVID, dbSVID := f.issue(t, "default", webID), f.issue(t, "default", db.String())
	evilSVID := f.issue(t, "evil", webID) // same ID, another mesh's CA
	otherSVID := f.issue(t, "other", "spiffe://other.mesh.local/workload/web")
	bundle, otherBundle := f.bundle(t, "default"), f.bundle(t, "other")

	for _, tc := range []struct {
		name                     string
		server, client           *SVID
		serverTrust, clientTrust *Bundle
		wantClient, wantServer   spiffeid.ID
		ok                       bool
	}{
		{"same mesh", dbSVID, webSVID, bundle, bundle, web, db, true},
		{"client cert from another mesh's CA, same SPIFFE ID", dbSVID, evilSVID, bundle, bundle, web, db, false},
		{"server cert from another mesh's CA, same SPIFFE ID", evilSVID, dbSVID, bundle, bundle, db, web, false},
		{"client of another trust domain", dbSVID, otherSVID, bundle, otherBundle, web, db, false},
		{"server authorizes another ID", dbSVID, webSVID, bundle, bundle, db, db, false},
		{"client expects another server ID", dbSVID, webSVID, bundle, bundle, web, web, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(t, tc.server, tc.client, tc.serverTrust, tc.clientTrust, tc.wantClient, tc.wantServer)
			if tc.ok && err != nil {
				t.Fatalf("handshake failed: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("handshake succeeded")
			}
		})
	}
}

func TestMTLSAcrossRootRotation(t *testing.T) {
	f := newFixture(t, time.Now)
	oldWeb := f.issue(t, "default", webID)
	staleBundle := f.bundle(t, "default")
	if err := f.ca.Rotate(context.Background(), "default"); err != nil {
		t.Fatal(err)
	}
	db := mustID(t, "spiffe://default.mesh.local/workload/db")
	newDB := f.issue(t, "default", db.String())
	bundle := f.bundle(t, "default")
	if len(bundle.Roots) != 2 {
		t.Fatalf("overlap bundle has %d roots", len(bundle.Roots))
	}
	// Old-root leaf and new-root leaf talk both ways with the overlap bundle.
	if err := handshake(t, newDB, oldWeb, bundle, bundle, mustID(t, webID), db); err != nil {
		t.Fatalf("new server, old client: %v", err)
	}
	if err := handshake(t, oldWeb, newDB, bundle, bundle, db, mustID(t, webID)); err != nil {
		t.Fatalf("old server, new client: %v", err)
	}
	// A peer still holding only the pre-rotation bundle cannot verify the
	// new root's leaf: the reason the overlap exists.
	if err := handshake(t, newDB, oldWeb, bundle, staleBundle, mustID(t, webID), db); err == nil {
		t.Fatal("new-root leaf verified against the pre-rotation bundle")
	}
}
