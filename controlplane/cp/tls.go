package cp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// CACertFile is where the CP writes its own CA certificate (under
// ECSMESH_DATA_DIR) for agents' --ca-cert-file.
const CACertFile = "cp-ca.pem"

// cpCAKey is the store record of the CP's own CA, shared by replicas.
var cpCAKey = store.Key{Kind: "ControlPlaneCA", Name: "default"}

type cpCA struct {
	CertPEM string `json:"certPEM"`
	KeyPEM  string `json:"keyPEM"`
}

// serverTLS returns the TLS configuration of the API and xDS listeners:
// the files of KUMA_GENERAL_TLS_CERT_FILE/KEY_FILE when given, else a
// certificate from the CP's own CA (kept in the store, so every replica
// presents a certificate agents trust with one CA file).
func (s *Server) serverTLS(ctx context.Context) (*tls.Config, []byte, error) {
	if s.cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("loading KUMA_GENERAL_TLS_CERT_FILE/KEY_FILE: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil, nil
	}
	ca, err := loadOrCreateCA(ctx, s.store)
	if err != nil {
		return nil, nil, err
	}
	caCert, caKey, err := ca.parse()
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	names := []string{"localhost", "ecsmesh-cp"}
	if host != "" {
		names = append(names, host)
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	for _, addr := range []string{s.cfg.APIAddr, s.cfg.XDSAddr, s.cfg.AdminAddr} {
		if h, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
				ips = append(ips, ip)
			} else if h != "" && ip == nil {
				names = append(names, h)
			}
		}
	}
	names = append(names, s.cfg.ExtraTLSNames...)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "ecsmesh-cp"},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing server certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der, caCert.Raw}, PrivateKey: leafKey}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, []byte(ca.CertPEM), nil
}

// adminTLS returns the admin API's TLS configuration, nil for plain HTTP
// (loopback without ECSMESH_ADMIN_TLS_*): the files of
// ECSMESH_ADMIN_TLS_CERT_FILE/KEY_FILE when given, else api, the sidecar
// API's (KUMA_GENERAL_TLS_* or one from the CP's own CA, which cp-ca.pem
// lets ecsmesh-cp trust).
func (s *Server) adminTLS(api *tls.Config) (*tls.Config, error) {
	if !s.cfg.AdminTLS() {
		return nil, nil
	}
	if s.cfg.AdminTLSCertFile == "" {
		return api, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.AdminTLSCertFile, s.cfg.AdminTLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading ECSMESH_ADMIN_TLS_CERT_FILE/KEY_FILE: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func loadOrCreateCA(ctx context.Context, st store.Store) (cpCA, error) {
	for range 3 {
		rec, err := st.Get(ctx, cpCAKey)
		if err == nil {
			var ca cpCA
			if err := json.Unmarshal(rec.Spec, &ca); err != nil {
				return cpCA{}, fmt.Errorf("decoding the control plane CA: %w", err)
			}
			return ca, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return cpCA{}, fmt.Errorf("reading the control plane CA: %w", err)
		}
		ca, err := newCA()
		if err != nil {
			return cpCA{}, err
		}
		spec, _ := json.Marshal(ca)
		if _, err := store.CreateRecord(ctx, st, store.Record{Key: cpCAKey, Spec: spec}); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return cpCA{}, fmt.Errorf("storing the control plane CA: %w", err)
		} else if err == nil {
			return ca, nil
		}
		// Another replica won the race: read its CA.
	}
	return cpCA{}, errors.New("cp: could not settle on a control plane CA")
}

func newCA() (cpCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cpCA{}, fmt.Errorf("generating CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ecsmesh control plane CA", Organization: []string{"ecsmesh"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return cpCA{}, fmt.Errorf("self-signing CA: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return cpCA{}, err
	}
	return cpCA{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
	}, nil
}

func (c cpCA) parse() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode([]byte(c.CertPEM))
	kb, _ := pem.Decode([]byte(c.KeyPEM))
	if cb == nil || kb == nil {
		return nil, nil, errors.New("cp: the stored control plane CA is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing control plane CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing control plane CA key: %w", err)
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeCAFile writes the CA certificate for local agents.
func writeCAFile(dataDir string, pemBytes []byte) (string, error) {
	if len(pemBytes) == 0 {
		return "", nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dataDir, CACertFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, pemBytes, 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}
