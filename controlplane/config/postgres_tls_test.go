package config

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// testCA is a throwaway CA that signs server certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key, file: file}
}

// serverCert issues a server certificate for the given DNS names and IPs.
func (ca testCA) serverCert(t *testing.T, dns []string, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "db"}, DNSNames: dns, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// fakeTLSPostgres answers PostgreSQL's SSLRequest with 'S' and completes a
// TLS handshake with cert; it reports whether the client accepted the
// certificate (the handshake succeeded), then hangs up.
func fakeTLSPostgres(t *testing.T, cert tls.Certificate) (port int, accepted <-chan bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan bool, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		var req [8]byte
		if _, err := io.ReadFull(conn, req[:]); err != nil || binary.BigEndian.Uint32(req[4:]) != 80877103 {
			out <- false
			return
		}
		if _, err := conn.Write([]byte{'S'}); err != nil {
			out <- false
			return
		}
		srv := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		err = srv.Handshake()
		if err == nil {
			// TLS 1.3: the client's verdict on the certificate arrives
			// with its first read; wait for the startup message or an alert.
			_, err = srv.Read(make([]byte, 1))
		}
		out <- err == nil
	}()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	port, _ = strconv.Atoi(p)
	return port, out
}

// TestPostgresTLSVerifiesWithTheConfiguredCA connects pgx, with the DSN the
// CP builds, to a server presenting various certificates: verifyFull with
// KUMA_STORE_POSTGRES_TLS_CA_PATH accepts only a certificate from that CA
// naming the host.
func TestPostgresTLSVerifiesWithTheConfiguredCA(t *testing.T) {
	rds, other := newTestCA(t, "rds"), newTestCA(t, "other")
	loopback := net.ParseIP("127.0.0.1")
	tests := []struct {
		name   string
		mode   string
		caPath string
		cert   tls.Certificate
		want   bool
	}{
		{"verifyFull, CA and name match", "verifyFull", rds.file, rds.serverCert(t, nil, loopback), true},
		{"verifyFull, certificate for another host", "verifyFull", rds.file, rds.serverCert(t, []string{"evil.example"}), false},
		{"verifyFull, certificate from another CA", "verifyFull", rds.file, other.serverCert(t, nil, loopback), false},
		{"verifyCa ignores the name", "verifyCa", rds.file, rds.serverCert(t, []string{"evil.example"}), true},
		{"verifyCa, certificate from another CA", "verifyCa", rds.file, other.serverCert(t, nil, loopback), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, accepted := fakeTLSPostgres(t, tt.cert)
			c, err := Load(Flags{}, env(map[string]string{
				"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_HOST": "127.0.0.1", "KUMA_STORE_POSTGRES_PORT": strconv.Itoa(port),
				"KUMA_STORE_POSTGRES_TLS_MODE": tt.mode, "KUMA_STORE_POSTGRES_TLS_CA_PATH": tt.caPath,
			}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := pgconn.Connect(ctx, c.PostgresDSN()+" connect_timeout=10")
			if err == nil {
				conn.Close(ctx)
			}
			select {
			case got := <-accepted:
				if got != tt.want {
					t.Errorf("certificate accepted = %v, want %v (client: %v)", got, tt.want, err)
				}
			case <-ctx.Done():
				t.Fatalf("the client never reached the TLS handshake: %v", err)
			}
		})
	}
}

func TestPostgresCAPathRefusals(t *testing.T) {
	ca := newTestCA(t, "rds")
	notPEM := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := func(kv ...string) map[string]string {
		m := map[string]string{"KUMA_STORE_TYPE": "postgres"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want string // "" = accepted
	}{
		{"CA with verifyFull", pg("KUMA_STORE_POSTGRES_TLS_MODE", "verifyFull", "KUMA_STORE_POSTGRES_TLS_CA_PATH", ca.file), ""},
		{"CA with verifyNone", pg("KUMA_STORE_POSTGRES_TLS_MODE", "verifyNone", "KUMA_STORE_POSTGRES_TLS_CA_PATH", ca.file), "KUMA_STORE_POSTGRES_TLS_CA_PATH: is only used with KUMA_STORE_POSTGRES_TLS_MODE=verifyCa or verifyFull"},
		{"CA with disable", pg("KUMA_STORE_POSTGRES_TLS_CA_PATH", ca.file), "KUMA_STORE_POSTGRES_TLS_CA_PATH: is only used with"},
		{"missing CA file", pg("KUMA_STORE_POSTGRES_TLS_MODE", "verifyFull", "KUMA_STORE_POSTGRES_TLS_CA_PATH", ca.file+".missing"), "KUMA_STORE_POSTGRES_TLS_CA_PATH: cannot read"},
		{"CA file without certificates", pg("KUMA_STORE_POSTGRES_TLS_MODE", "verifyFull", "KUMA_STORE_POSTGRES_TLS_CA_PATH", notPEM), "KUMA_STORE_POSTGRES_TLS_CA_PATH: holds no PEM certificate"},
		// SQLite ignores the PostgreSQL settings.
		{"sqlite", map[string]string{"KUMA_STORE_POSTGRES_TLS_CA_PATH": ca.file + ".missing"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(Flags{}, env(tt.env))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if tt.want == "" && tt.env["KUMA_STORE_TYPE"] == "postgres" {
				cfg, err := pgconn.ParseConfig(c.PostgresDSN())
				if err != nil {
					t.Fatal(err)
				}
				if cfg.TLSConfig == nil || cfg.TLSConfig.InsecureSkipVerify || cfg.TLSConfig.RootCAs == nil {
					t.Errorf("DSN %s: TLS config %+v does not verify with the CA", c.PostgresDSN(), cfg.TLSConfig)
				}
			}
		})
	}
}

func TestPostgresDSNQuotesCAPath(t *testing.T) {
	c := Default()
	c.Store.Postgres.TLSMode = "verifyFull"
	c.Store.Postgres.CAPath = `/etc/it's here\rds.pem`
	if got := c.PostgresDSN(); !strings.Contains(got, `sslmode=verify-full`) || !strings.Contains(got, `sslrootcert='/etc/it\'s here\\rds.pem'`) {
		t.Errorf("DSN = %s", got)
	}
}
