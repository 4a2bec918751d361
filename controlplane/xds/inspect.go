package xds

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// ErrNotFound is returned by InspectDataplane for an unknown dataplane.
var ErrNotFound = errors.New("xds: dataplane not found")

// InspectDataplane renders the dataplane's current xDS resources as
// `inspect` prints them, {"version","resources":{"<type URL>":[...]}},
// with key material redacted (see redactInspect). It works for any stored
// Dataplane, connected or not (unconnected ones have no identity
// certificate or token yet). It implements admin.Inspector.
func (s *Server) InspectDataplane(ctx context.Context, mesh, name string) ([]byte, error) {
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	var snap generate.Snapshot
	var node *generate.Node
	if running {
		select {
		case <-s.loaded:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		v, ok := s.cache.view(NodeID(mesh, name))
		if !ok {
			return nil, s.inspectMissing(ctx, mesh, name)
		}
		snap, node = generate.Resources(v.mesh, v.node, v.identity, v.outbound), v.node
	} else {
		w := newWorld(s.src)
		if err := w.load(ctx); err != nil {
			return nil, err
		}
		if w.meshes[mesh] == nil || w.dps[mesh][name] == nil {
			return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, mesh, name)
		}
		m, nodes, err := w.build(mesh)
		if err != nil {
			return nil, err
		}
		n := nodes[name]
		if n == nil {
			return nil, fmt.Errorf("xds: cannot generate the config of %s/%s (see the CP log)", mesh, name)
		}
		snap, node = generate.Resources(m, n, nil, generate.OutboundFilterConfig(m, n, nil)), n
	}
	out, err := snap.JSON()
	if err != nil {
		return nil, err
	}
	applied, err := node.AppliedPolicies()
	if err != nil {
		return nil, err
	}
	return redactInspect(out, applied)
}

// inspectMissing explains why a dataplane has no config.
func (s *Server) inspectMissing(ctx context.Context, mesh, name string) error {
	_, err := s.o.Store.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, mesh, name)
	}
	if err != nil {
		return fmt.Errorf("xds: reading dataplane %s/%s: %w", mesh, name, err)
	}
	return fmt.Errorf("xds: dataplane %s/%s has no config yet (just applied, or its identity cannot be rendered: see the CP log)", mesh, name)
}

// Redaction markers in inspect output.
const (
	redacted      = "[redacted]"
	redactedToken = "[redacted JWT; expires %s]"
)

// stringValueTypeURL is the type URL of the filter's configuration: JSON
// inside a StringValue.
var stringValueTypeURL = generate.TypeURL(&wrapperspb.StringValue{})

var (
	jwtRE    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	base64RE = regexp.MustCompile(`^[A-Za-z0-9+/_-]{40,}={0,2}$`)
)

// redactInspect rewrites a rendered snapshot so that it shows who a
// dataplane is, never what would let a reader be it:
//
//   - an identity Secret's private key (and any password, PKCS#12 or
//     key provider) becomes "[redacted]"; its certificates are summarized
//     beside the chain (subject, issuer, URI and DNS SANs, serial,
//     notBefore, notAfter); Secret types other than a certificate or a
//     validation context are redacted whole;
//   - every field named "token", at any depth of any resource, including
//     the JSON configuration the filter receives as a StringValue, becomes
//     "[redacted JWT; expires <exp>]";
//   - any other string holding a JWT or a PEM private key, as is or
//     base64-encoded, is redacted too (fail closed on new fields).
//
// policies, when not nil, is added as "policies": the traffic policies
// applied, as generate.Node.AppliedPolicies renders them.
func redactInspect(rendered []byte, policies json.RawMessage) ([]byte, error) {
	var doc struct {
		Version   string                       `json:"version"`
		Resources map[string][]json.RawMessage `json:"resources"`
		Policies  json.RawMessage              `json:"policies,omitempty"`
	}
	if err := json.Unmarshal(rendered, &doc); err != nil {
		return nil, fmt.Errorf("xds: redacting inspect output: %w", err)
	}
	doc.Policies = policies
	for _, list := range doc.Resources {
		for i, raw := range list {
			v, err := decodeJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("xds: redacting inspect output: %w", err)
			}
			b, err := json.Marshal(redactValue(v))
			if err != nil {
				return nil, fmt.Errorf("xds: redacting inspect output: %w", err)
			}
			list[i] = b
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("xds: redacting inspect output: %w", err)
	}
	return append(b, '\n'), nil
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func redactValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return redactObject(v)
	case []any:
		for i := range v {
			v[i] = redactValue(v[i])
		}
		return v
	case string:
		return redactString(v)
	}
	return v
}

func redactObject(m map[string]any) map[string]any {
	switch m["@type"] {
	case resourcev3.SecretType:
		redactSecret(m)
	case stringValueTypeURL:
		// The filter's configuration: JSON inside a string.
		if s, ok := m["value"].(string); ok {
			if inner, err := decodeJSON([]byte(s)); err == nil {
				if b, err := json.Marshal(redactValue(inner)); err == nil {
					m["value"] = string(b)
				}
			}
		}
	}
	for k, v := range m {
		if k == "token" {
			m[k] = tokenMarker(v)
			continue
		}
		m[k] = redactValue(v)
	}
	return m
}

// redactSecret keeps a Secret's public parts and summarizes its
// certificates.
func redactSecret(m map[string]any) {
	for k, v := range m {
		switch k {
		case "@type", "name":
		case "tlsCertificate":
			tc, ok := v.(map[string]any)
			if !ok {
				m[k] = redacted
				continue
			}
			for f := range tc {
				if f != "certificateChain" {
					tc[f] = map[string]any{"inlineString": redacted}
				}
			}
			if certs := summarizeCerts(tc["certificateChain"]); certs != nil {
				tc["certificates"] = certs
			}
		case "validationContext":
			if vc, ok := v.(map[string]any); ok {
				if certs := summarizeCerts(vc["trustedCa"]); certs != nil {
					vc["certificates"] = certs
				}
			}
		default: // session ticket keys, generic secrets, anything new
			m[k] = redacted
		}
	}
}

// summarizeCerts describes the PEM certificates of a rendered DataSource.
func summarizeCerts(ds any) []any {
	m, _ := ds.(map[string]any)
	var data []byte
	if s, ok := m["inlineBytes"].(string); ok {
		data, _ = base64.StdEncoding.DecodeString(s)
	} else if s, ok := m["inlineString"].(string); ok {
		data = []byte(s)
	}
	var out []any
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if block.Type != "CERTIFICATE" || err != nil {
			continue
		}
		uris := []string{}
		for _, u := range cert.URIs {
			uris = append(uris, u.String())
		}
		c := map[string]any{
			"subject": cert.Subject.String(), "issuer": cert.Issuer.String(), "uriSans": uris,
			"serial":    cert.SerialNumber.Text(16),
			"notBefore": cert.NotBefore.UTC().Format(time.RFC3339), "notAfter": cert.NotAfter.UTC().Format(time.RFC3339),
		}
		if len(cert.DNSNames) > 0 {
			c["dnsSans"] = cert.DNSNames
		}
		out = append(out, c)
	}
}

// tokenMarker replaces a token by its expiry (read, unverified, from a
// JWT's exp claim).
func tokenMarker(v any) any {
	s, ok := v.(string)
	if !ok || s == "" {
		return redactValue(v)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return redacted
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return redacted
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return redacted
	}
	exp, err := claims.Exp.Int64()
	if err != nil {
		return redacted
	}
	return fmt.Sprintf(redactedToken, time.Unix(exp, 0).UTC().Format(time.RFC3339))
}

// redactString catches key material outside the fields above.
func redactString(s string) string {
	if strings.Contains(s, "PRIVATE KEY") {
		return redacted
	}
	s = jwtRE.ReplaceAllStringFunc(s, func(t string) string { return tokenMarker(t).(string) })
	if base64RE.MatchString(s) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil && (bytes.Contains(b, []byte("PRIVATE KEY")) || jwtRE.Match(b)) {
				return redacted
			}
		}
	}
	return s
}
