package cp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const adminToken = "admin-token-0123456789"

// adminGet calls GET path on the admin API at port over scheme, trusting
// roots (nil: system roots), with the admin token.
func adminGet(scheme, port, path string, roots *x509.CertPool) (int, *tls.ConnectionState, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest(http.MethodGet, scheme+"://127.0.0.1:"+port+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.TLS, nil
}

func poolFromFile(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", path)
	}
	return pool
}

// TestAdminOffLoopbackServesHTTPS: bound off loopback the admin API
// carries its bearer token, so it answers over TLS only, with a
// certificate from the CP's CA (the agents' cp-ca.pem) by default.
func TestAdminOffLoopbackServesHTTPS(t *testing.T) {
	cfg := testConfig(t, map[string]string{"ECSMESH_ADMIN_ADDR": "0.0.0.0:0", "ECSMESH_ADMIN_TOKEN": adminToken})
	r := start(t, cfg)
	_, port, _ := net.SplitHostPort(r.srv.Addrs().Admin)
	if status, _, err := adminGet("http", port, "/meshes", nil); err == nil && status == http.StatusOK {
		t.Fatal("the admin API answered plain HTTP off loopback: its token crosses the network in clear")
	}
	status, state, err := adminGet("https", port, "/meshes", poolFromFile(t, filepath.Join(cfg.DataDir, CACertFile)))
	if err != nil || status != http.StatusOK {
		t.Fatalf("HTTPS with the CP CA: %d %v", status, err)
	}
	if cn := state.PeerCertificates[0].Subject.CommonName; cn != "ecsmesh-cp" {
		t.Errorf("served certificate %q, want the CP's own", cn)
	}
}

// TestAdminServesTheOperatorsCertificate: ECSMESH_ADMIN_TLS_CERT_FILE and
// _KEY_FILE choose the admin certificate (and turn TLS on even on
// loopback); plain loopback stays HTTP (the other tests' r.do).
func TestAdminServesTheOperatorsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "admin.example")
	cfg := testConfig(t, map[string]string{"ECSMESH_ADMIN_TLS_CERT_FILE": certFile, "ECSMESH_ADMIN_TLS_KEY_FILE": keyFile})
	r := start(t, cfg)
	_, port, _ := net.SplitHostPort(r.srv.Addrs().Admin)
	status, state, err := adminGet("https", port, "/meshes", poolFromFile(t, certFile))
	if err != nil || status != http.StatusOK {
		t.Fatalf("HTTPS with the operator's certificate: %d %v", status, err)
	}
	if cn := state.PeerCertificates[0].Subject.CommonName; cn != "admin.example" {
		t.Errorf("served certificate %q, want the operator's", cn)
	}
}

// writeCert writes a self-signed server certificate for 127.0.0.1.
func writeCert(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
