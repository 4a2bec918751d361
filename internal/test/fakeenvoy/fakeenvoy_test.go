package fakeenvoy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
)

// testCA issues server certificates for the handshake tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// leaf issues a server certificate whose SANs are names (IP addresses
// become IP SANs); the common name is the first name, which no verifier
// may read.
func (ca *testCA) leaf(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names[1:] {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// handshake runs a real TLS handshake between a server presenting cert
// and a client using cfg; it returns the client's error.
func handshake(t *testing.T, cfg *tls.Config, cert tls.Certificate) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	return c.Handshake()
}

func buildBootstrap(t *testing.T, p envoybootstrap.Params) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := envoybootstrap.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFakeEnvoyChecksTheServerNameLikeEnvoy: the stand-in verifies the CP's
// certificate with the bootstrap's own rules — the trusted CA and the SAN
// matchers of the ADS cluster (or the Google gRPC target's host) — so a
// certificate from the trusted CA for another name is refused, as Envoy
// refuses it.
func TestFakeEnvoyChecksTheServerNameLikeEnvoy(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	tests := []struct {
		name   string
		params envoybootstrap.Params
		cert   tls.Certificate
		ok     bool
	}{
		{"IP host, IP SAN", envoybootstrap.Params{XDSHost: "127.0.0.1", Token: "t"}, ca.leaf(t, "cp", "127.0.0.1"), true},
		{"IP host, certificate for another IP", envoybootstrap.Params{XDSHost: "127.0.0.1", Token: "t"}, ca.leaf(t, "evil", "10.9.9.9"), false},
		{"IP host, the IP only as a DNS SAN or CN", envoybootstrap.Params{XDSHost: "127.0.0.1", Token: "t"}, ca.leaf(t, "127.0.0.1", "127.0.0.1.nip.io"), false},
		{"DNS host, DNS SAN", envoybootstrap.Params{XDSHost: "cp.mesh.internal", Token: "t"}, ca.leaf(t, "cp", "CP.mesh.internal"), true},
		{"DNS host, wildcard SAN", envoybootstrap.Params{XDSHost: "cp.mesh.internal", Token: "t"}, ca.leaf(t, "cp", "*.mesh.internal"), true},
		{"DNS host, wildcard one level too high", envoybootstrap.Params{XDSHost: "cp.mesh.internal", Token: "t"}, ca.leaf(t, "cp", "*.internal"), false},
		{"DNS host, certificate for another name", envoybootstrap.Params{XDSHost: "cp.mesh.internal", Token: "t"}, ca.leaf(t, "cp.mesh.internal", "attacker.example", "127.0.0.1"), false},
		{"DNS host, right name from another CA", envoybootstrap.Params{XDSHost: "cp.mesh.internal", Token: "t"}, other.leaf(t, "cp", "cp.mesh.internal"), false},
		{"reloadable tokens: gRPC checks the target host", envoybootstrap.Params{XDSHost: "cp.mesh.internal", TokenFile: "/tok"}, ca.leaf(t, "cp", "cp.mesh.internal"), true},
		{"reloadable tokens: another name refused", envoybootstrap.Params{XDSHost: "cp.mesh.internal", TokenFile: "/tok"}, ca.leaf(t, "cp", "attacker.example"), false},
		{"reloadable tokens, IP host: another IP refused", envoybootstrap.Params{XDSHost: "127.0.0.1", TokenFile: "/tok"}, ca.leaf(t, "cp", "10.9.9.9"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.params
			p.Mesh, p.Name, p.XDSPort, p.CACertFile = "default", "web-1", 5679, ca.file
			cfg, err := FromBootstrap(buildBootstrap(t, p))
			if err != nil {
				t.Fatal(err)
			}
			tc, err := cfg.tlsConfig()
			if err != nil {
				t.Fatal(err)
			}
			err = handshake(t, tc, tt.cert)
			if tt.ok && err != nil {
				t.Fatalf("handshake refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatal("handshake accepted a certificate Envoy refuses")
			}
		})
	}
}

// TestFakeEnvoyRefusesABootstrapWithoutNameCheck: an ADS cluster that trusts
// a CA but names no SAN would let any certificate of that CA serve the
// config; the stand-in refuses such a bootstrap instead of copying the
// hole.
func TestFakeEnvoyRefusesABootstrapWithoutNameCheck(t *testing.T) {
	b := buildBootstrap(t, envoybootstrap.Params{Mesh: "default", Name: "web-1", XDSHost: "127.0.0.1", XDSPort: 5679, Token: "t", CACertFile: "/ca.pem"})
	cl := b.GetStaticResources().GetClusters()[0]
	var up tlsv3.UpstreamTlsContext
	if err := cl.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatal(err)
	}
	up.GetCommonTlsContext().GetValidationContext().MatchTypedSubjectAltNames = nil
	a, err := anypb.New(&up)
	if err != nil {
		t.Fatal(err)
	}
	cl.GetTransportSocket().ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: a}
	if _, err := FromBootstrap(b); err == nil || !strings.Contains(err.Error(), "SAN") {
		t.Fatalf("FromBootstrap without a SAN matcher: err = %v", err)
	}
}
