package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/bootstrap/agent"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
	"github.com/ecsmesh/ecsmesh/bootstrap/envoy"
)

// validConfig is a config agent.New accepts; tests break one field.
func validConfig(t *testing.T, caFile string) agent.Config {
	t.Helper()
	meta, err := ecsmeta.New(ecsmeta.Config{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return agent.Config{
		CPURL: "https://ecsmesh-cp:5678", AuthType: agent.AuthNone, Template: template,
		CACertFile: caFile, WorkDir: t.TempDir(), Metadata: meta,
		Launch: func(context.Context, envoy.Options) (agent.Envoy, error) { return nil, nil },
	}
}

// writeCA writes a self-signed CA certificate and returns its path and
// parsed form.
func writeCA(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CP CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cp-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, cert
}

// TestNewRefusesAnInsecureControlPlane: the agent sends signed IAM logins
// and dataplane tokens to the CP, so it refuses a plain-HTTP address and a
// CP it cannot authenticate with a pinned CA (unless the system roots are
// asked for explicitly).
func TestNewRefusesAnInsecureControlPlane(t *testing.T) {
	caFile, _ := writeCA(t)
	tests := []struct {
		name string
		edit func(*agent.Config)
		want []string
	}{
		{"http address", func(c *agent.Config) { c.CPURL = "http://ecsmesh-cp:5678" }, []string{"--cp-address", "KUMA_CONTROL_PLANE_URL", "https://", "tokens"}},
		{"HTTP address in capitals", func(c *agent.Config) { c.CPURL = "HTTP://ecsmesh-cp:5678" }, []string{"--cp-address", "https://"}},
		{"no scheme", func(c *agent.Config) { c.CPURL = "ecsmesh-cp:5678" }, []string{"--cp-address"}},
		{"no host", func(c *agent.Config) { c.CPURL = "https://" }, []string{"--cp-address"}},
		{"no CA", func(c *agent.Config) { c.CACertFile = "" }, []string{"--ca-cert-file", "KUMA_CONTROL_PLANE_CA_CERT_FILE", "--use-system-ca-certs", "ECSMESH_DP_USE_SYSTEM_CA_CERTS"}},
		{"CA and system roots", func(c *agent.Config) { c.SystemCACerts = true }, []string{"--ca-cert-file", "--use-system-ca-certs", "not both"}},
		{"unreadable CA", func(c *agent.Config) { c.CACertFile = filepath.Join(t.TempDir(), "nope.pem") }, []string{"--ca-cert-file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(t, caFile)
			tt.edit(&cfg)
			_, err := agent.New(cfg)
			if err == nil {
				t.Fatal("agent.New accepted the config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	if _, err := agent.New(validConfig(t, caFile)); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	sys := validConfig(t, "")
	sys.SystemCACerts = true
	if _, err := agent.New(sys); err != nil {
		t.Fatalf("--use-system-ca-certs refused: %v", err)
	}
}

// TestHTTPClientTrustsOnlyThePinnedCA: with a CA file the agent's client
// trusts that CA alone, not the system roots besides it (a certificate any
// public CA issued for the CP's name must not receive the IAM login).
func TestHTTPClientTrustsOnlyThePinnedCA(t *testing.T) {
	caFile, ca := writeCA(t)
	hc, err := agent.NewHTTPClient(caFile, false)
	if err != nil {
		t.Fatal(err)
	}
	want := x509.NewCertPool()
	want.AddCert(ca)
	if got := hc.Transport.(*http.Transport).TLSClientConfig.RootCAs; !got.Equal(want) {
		t.Fatal("the agent's HTTP client trusts more than the pinned CA")
	}
	sys, err := agent.NewHTTPClient("", true)
	if err != nil {
		t.Fatal(err)
	}
	if sys.Transport.(*http.Transport).TLSClientConfig.RootCAs != nil {
		t.Fatal("--use-system-ca-certs: want the system roots (nil RootCAs)")
	}
	if _, err := agent.NewHTTPClient("", false); err == nil || !strings.Contains(err.Error(), "--ca-cert-file") {
		t.Fatalf("no CA: err = %v", err)
	}
}
