package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	golangv3 "github.com/envoyproxy/go-control-plane/contrib/envoy/extensions/filters/http/golang/v3alpha"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

// received is one identity a stream was sent: the X.509 SVID of the
// identity secret, the identity a filter config names, or a JWT-SVID in a
// filter config.
type received struct {
	kind     string // "x509", "filter identity" or "JWT-SVID"
	spiffeID string // URI SAN of the certificate, the filter's spiffeId or the JWT-SVID's sub
	jwt      string
	certDER  []byte
	keyPEM   []byte
}

// adsStream is one ADS stream of adsclient (subscribing as Envoy does)
// that records every resource it is sent, before anything else looks at
// it, so that the test can say what a stream has ever received.
type adsStream struct {
	label  string
	client *adsclient.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream ended

	mu   sync.Mutex
	raw  [][]byte // every resource, marshalled
	svid []received
	errs []string // resources the recorder could not read
	err  error    // why the stream ended
}

// openADS opens one SotW stream to addr with the dataplane token tok as
// node nodeID, verifying the CP with roots (the CP's CA, as the agent
// pins it). The node asks for every VIP listener (ecsmesh-dp
// --bind-outbounds), so it is sent the outbound filter with its
// destination-bound JWT-SVIDs too.
func openADS(t *testing.T, label, addr string, roots *x509.CertPool, tok, nodeID string) *adsStream {
	t.Helper()
	s := &adsStream{label: label, done: make(chan struct{})}
	c, err := adsclient.New(adsclient.Config{
		Address:  addr,
		TLS:      &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Token:    func() (string, error) { return tok, nil },
		NodeID:   nodeID,
		Metadata: map[string]any{envoybootstrap.MetaBindOutbounds: true},
		Reject: func(typeURL string, res map[string]*anypb.Any) error {
			s.record(typeURL, res)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		err := c.Run(ctx)
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}()
	t.Cleanup(s.close)
	return s
}

// close ends the stream from the client side and waits for it.
func (s *adsStream) close() {
	s.cancel()
	<-s.done
	_ = s.client.Close()
}

// ended reports whether the stream is over, and why.
func (s *adsStream) ended() (bool, error) {
	select {
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return true, s.err
	default:
		return false, nil
	}
}

// code is the gRPC status code the stream ended with.
func (s *adsStream) code() string {
	_, err := s.ended()
	return status.Code(err).String()
}

func (s *adsStream) record(typeURL string, res map[string]*anypb.Any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, a := range res {
		s.raw = append(s.raw, append([]byte(a.GetTypeUrl()+"\x00"), a.GetValue()...))
		var rs []received
		var err error
		switch typeURL {
		case resourcev3.SecretType:
			var r *received
			if r, err = secretSVID(a); r != nil {
				rs = append(rs, *r)
			}
		case resourcev3.ExtensionConfigType:
			rs, err = filterIdentities(a)
		}
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("%s %s: %v", typeURL, name, err))
		}
		s.svid = append(s.svid, rs...)
	}
}

// snapshot returns what the stream was sent so far.
func (s *adsStream) snapshot() (raw [][]byte, svids []received, errs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.raw...), append([]received(nil), s.svid...), append([]string(nil), s.errs...)
}

// x509SVIDs returns the X.509 SVIDs received so far.
func (s *adsStream) x509SVIDs() []received {
	_, all, _ := s.snapshot()
	var out []received
	for _, r := range all {
		if r.kind == "x509" {
			out = append(out, r)
		}
	}
	return out
}

// secretSVID reads the certificate and key of a TLS certificate secret
// (nil for the trust bundle).
func secretSVID(a *anypb.Any) (*received, error) {
	var sec tlsv3.Secret
	if err := a.UnmarshalTo(&sec); err != nil {
		return nil, err
	}
	tc := sec.GetTlsCertificate()
	if tc == nil {
		return nil, nil
	}
	chain := tc.GetCertificateChain().GetInlineBytes()
	block, _ := pem.Decode(chain)
	if block == nil {
		return nil, fmt.Errorf("secret %s: no PEM certificate", sec.GetName())
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	var uris []string
	for _, u := range cert.URIs {
		uris = append(uris, u.String())
	}
	return &received{kind: "x509", spiffeID: strings.Join(uris, ","), certDER: cert.Raw, keyPEM: tc.GetPrivateKey().GetInlineBytes()}, nil
}

// jwtRE finds compact JWTs (header and payload are JSON objects).
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+`)

// filterIdentities reads what a filter configuration (ECDS) says the
// sidecar is: its identity's SPIFFE ID, and the subject of every JWT-SVID
// anywhere in it (the identity's and each route's destination-bound one).
func filterIdentities(a *anypb.Any) ([]received, error) {
	var ext corev3.TypedExtensionConfig
	if err := a.UnmarshalTo(&ext); err != nil {
		return nil, err
	}
	inner, err := ext.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return nil, err
	}
	var cfgAny *anypb.Any
	switch m := inner.(type) {
	case *wasmfilterv3.Wasm:
		cfgAny = m.GetConfig().GetConfiguration()
	case *golangv3.Config:
		cfgAny = m.GetPluginConfig()
	default:
		return nil, fmt.Errorf("filter %s: unexpected %T", ext.GetName(), inner)
	}
	var str wrapperspb.StringValue
	if err := cfgAny.UnmarshalTo(&str); err != nil {
		return nil, err
	}
	var cfg filter.Config
	if err := json.Unmarshal([]byte(str.GetValue()), &cfg); err != nil {
		return nil, fmt.Errorf("filter %s: %w", ext.GetName(), err)
	}
	var out []received
	if cfg.Identity != nil {
		out = append(out, received{kind: "filter identity", spiffeID: cfg.Identity.SpiffeID})
	}
	for _, tok := range jwtRE.FindAllString(str.GetValue(), -1) {
		sub, err := jwtSubject(tok)
		if err != nil {
			return out, fmt.Errorf("filter %s: %w", ext.GetName(), err)
		}
		out = append(out, received{kind: "JWT-SVID", spiffeID: sub, jwt: tok})
	}
	return out, nil
}

// jwtSubject reads the sub claim of a JWT without verifying it.
func jwtSubject(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("JWT-SVID has %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("JWT-SVID payload: %w", err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("JWT-SVID payload: %w", err)
	}
	return c.Sub, nil
}

// secretsOf are the byte strings that must never leave the victim's own
// stream: its private keys (PEM and DER), certificates and JWT-SVIDs.
func secretsOf(svids []received) map[string][]byte {
	out := map[string][]byte{}
	for i, r := range svids {
		if len(r.keyPEM) > 0 {
			out[fmt.Sprintf("private key #%d (PEM)", i)] = r.keyPEM
			if b, _ := pem.Decode(r.keyPEM); b != nil {
				out[fmt.Sprintf("private key #%d (DER)", i)] = b.Bytes
			}
		}
		if len(r.certDER) > 0 {
			out[fmt.Sprintf("certificate #%d", i)] = r.certDER
		}
		if r.jwt != "" {
			out[fmt.Sprintf("JWT-SVID #%d", i)] = []byte(r.jwt)
		}
	}
	return out
}

// checkOnlyOwn fails the test if s was ever sent an SVID other than own's,
// or any of the secrets (secretsOf the victim's stream).
func checkOnlyOwn(t *testing.T, s *adsStream, own string, secrets map[string][]byte) {
	t.Helper()
	raw, svids, errs := s.snapshot()
	for _, e := range errs {
		t.Errorf("%s: unreadable resource: %s", s.label, e)
	}
	if _, nacks, last := s.client.Counts(); nacks > 0 {
		t.Errorf("%s NACKed %d responses (last: %v): what it was sent is not fully recorded", s.label, nacks, last)
	}
	for _, r := range svids {
		if r.spiffeID != own {
			t.Errorf("%s was sent the %s SVID of %q, not its own %q", s.label, r.kind, r.spiffeID, own)
		}
	}
	for what, secret := range secrets {
		for _, b := range raw {
			if bytes.Contains(b, secret) {
				t.Errorf("%s was sent the victim's %s", s.label, what)
				break
			}
		}
	}
}
