package fakeenvoy

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// supportedSAN refuses matchers the stand-in cannot apply as Envoy does
// (ecsmesh bootstraps only use exact DNS and IP_ADDRESS matchers).
func supportedSAN(m *tlsv3.SubjectAltNameMatcher) error {
	if m.GetMatcher().GetExact() == "" {
		return fmt.Errorf("fakeenvoy: SAN matcher %v: only exact matchers are supported", m)
	}
	switch m.GetSanType() {
	case tlsv3.SubjectAltNameMatcher_DNS:
	case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		if _, err := netip.ParseAddr(m.GetMatcher().GetExact()); err != nil {
			return fmt.Errorf("fakeenvoy: IP_ADDRESS SAN matcher %q: %w", m.GetMatcher().GetExact(), err)
		}
	default:
		return fmt.Errorf("fakeenvoy: SAN matcher type %s is not supported (DNS or IP_ADDRESS)", m.GetSanType())
	}
	return nil
}

// verifyServer checks the server's chain against roots (nil = the system
// roots) and that its leaf carries a SAN one of sans matches, as Envoy's
// certificate validator does (the subject's common name is never read).
func verifyServer(chain []*x509.Certificate, roots *x509.CertPool, sans []*tlsv3.SubjectAltNameMatcher) error {
	if len(chain) == 0 {
		return errors.New("fakeenvoy: the ADS server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("fakeenvoy: the ADS server's certificate: %w", err)
	}
	for _, m := range sans {
		if sanMatches(leaf, m) {
			return nil
		}
	}
	return fmt.Errorf("fakeenvoy: the ADS server's certificate (DNS SANs %q, IP SANs %v) matches none of the bootstrap's SAN matchers", leaf.DNSNames, leaf.IPAddresses)
}

func sanMatches(leaf *x509.Certificate, m *tlsv3.SubjectAltNameMatcher) bool {
	want := m.GetMatcher().GetExact()
	switch m.GetSanType() {
	case tlsv3.SubjectAltNameMatcher_DNS:
		for _, n := range leaf.DNSNames {
			if dnsNameMatch(want, n) {
				return true
			}
		}
	case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		ip, err := netip.ParseAddr(want)
		if err != nil {
			return false
		}
		for _, got := range leaf.IPAddresses {
			if a, ok := netip.AddrFromSlice(got); ok && a.Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}

// dnsNameMatch is Envoy's DNS SAN rule for an exact matcher: equal ignoring
// case, or pattern "*.rest" when name is one more label before rest.
func dnsNameMatch(name, pattern string) bool {
	name, pattern = strings.ToLower(name), strings.ToLower(pattern)
	if name == pattern {
		return true
	}
	rest, ok := strings.CutPrefix(pattern, "*")
	if !ok || !strings.HasPrefix(rest, ".") || len(name) <= len(rest) {
		return false
	}
	label, suffix := name[:len(name)-len(rest)], name[len(name)-len(rest):]
	return suffix == rest && label != "" && !strings.Contains(label, ".")
}
