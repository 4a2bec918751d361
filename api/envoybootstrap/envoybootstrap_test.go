package envoybootstrap_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name   string
		p      envoybootstrap.Params
		checks []string
		absent []string
	}{
		{
			name:   "reloadable token through file_based_metadata",
			p:      envoybootstrap.Params{Mesh: "default", Name: "web-1", Service: "web", XDSHost: "cp.mesh.local", XDSPort: 5679, CACertFile: "/etc/ecsmesh/cp-ca.pem", TokenFile: "/tmp/token", Metadata: map[string]string{envoybootstrap.MetaBindOutbounds: "true"}},
			checks: []string{`"id": "default.web-1"`, `"cluster": "web"`, envoybootstrap.FileBasedMetadata, `"filename": "/tmp/token"`, `"headerPrefix": "Bearer "`, `"targetUri": "cp.mesh.local:5679"`, `"filename": "/etc/ecsmesh/cp-ca.pem"`, `"ecsmesh.io/bind-outbounds": "true"`, `"address": "127.0.0.1"`, `"portValue": 9901`},
			absent: []string{"staticResources", "secret-token"},
		},
		{
			name:   "inline token, xDS host by name: SNI and a DNS SAN matcher",
			p:      envoybootstrap.Params{Mesh: "default", Name: "web-1", XDSHost: "cp.mesh.local", XDSPort: 5679, Token: "secret-token", CACertFile: "/etc/ecsmesh/cp-ca.pem"},
			checks: []string{`"type": "STRICT_DNS"`, `"sni": "cp.mesh.local"`, `"sanType": "DNS"`, `"exact": "cp.mesh.local"`, `"filename": "/etc/ecsmesh/cp-ca.pem"`},
		},
		{
			name: "inline token over a static TLS cluster",
			p:    envoybootstrap.Params{Mesh: "default", Name: "web-1", XDSHost: "10.0.0.5", XDSPort: 5679, Token: "secret-token", AdminPort: 9902},
			checks: []string{`"value": "Bearer secret-token"`, envoybootstrap.ADSClusterName, `"type": "STATIC"`, envoybootstrap.DefaultCABundle, `"portValue": 9902`, `"address": "10.0.0.5"`, `"sanType": "IP_ADDRESS"`, `"exact": "10.0.0.5"`,
				`"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {`, `"name": "envoy.transport_sockets.tls"`},
			absent: []string{"googleGrpc", `"sni"`}, // no SNI for an IP address (RFC 6066)
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := envoybootstrap.Build(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			js, err := envoybootstrap.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			// protojson varies its whitespace on purpose: compare in one form.
			text := normalize(t, js)
			for _, c := range tt.checks {
				if !strings.Contains(text, normalizeSnippet(c)) {
					t.Errorf("bootstrap lacks %s:\n%s", c, js)
				}
			}
			for _, c := range tt.absent {
				if strings.Contains(text, normalizeSnippet(c)) {
					t.Errorf("bootstrap has %s", c)
				}
			}
			if _, err := envoybootstrap.Parse(js); err != nil {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		p    envoybootstrap.Params
		want string
	}{
		{"no name", envoybootstrap.Params{Mesh: "m", XDSHost: "h", XDSPort: 1, Token: "t"}, "mesh and name"},
		{"bad port", envoybootstrap.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 70000, Token: "t"}, "invalid xDS address"},
		{"no token", envoybootstrap.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 1}, "token"},
		{"bad admin port", envoybootstrap.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 1, Token: "t", AdminPort: 70000}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := envoybootstrap.Build(tt.p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	for _, bad := range []string{`{`, `{"node": {"id": 1}}`, `{"unknownField": true}`, `{"admin": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 99999}}}}`} {
		if _, err := envoybootstrap.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := envoybootstrap.Build(envoybootstrap.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 1, TokenFile: "/t"})
	js, _ := envoybootstrap.Marshal(b)
	f.Add(js)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = envoybootstrap.Parse(data)
	})
}

// normalize re-indents JSON with encoding/json, whose output is stable.
func normalize(t *testing.T, js []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(js), "", " "); err != nil {
		t.Fatal(err)
	}
	return normalizeSnippet(buf.String())
}

// normalizeSnippet writes `"k": v` and `"k":v` the same way.
func normalizeSnippet(s string) string {
	return strings.NewReplacer(`": `, `":`, "  ", " ").Replace(s)
}

// TestADSClusterChecksTheServerName: the ADS cluster's TLS context must
// require the control plane's xDS host among the certificate's SANs (a DNS
// SAN for a name, an IP_ADDRESS SAN for an address) and send it as SNI when
// it is a name; with only trusted_ca, any certificate from that store (the
// system roots, by default) would receive the bearer token and serve
// configuration.
func TestADSClusterChecksTheServerName(t *testing.T) {
	tests := []struct {
		host    string
		sanType tlsv3.SubjectAltNameMatcher_SanType
		san     string
		sni     string
	}{
		{"cp.mesh.local", tlsv3.SubjectAltNameMatcher_DNS, "cp.mesh.local", "cp.mesh.local"},
		{"CP.Mesh.Local.", tlsv3.SubjectAltNameMatcher_DNS, "cp.mesh.local", "cp.mesh.local"},
		{"localhost", tlsv3.SubjectAltNameMatcher_DNS, "localhost", "localhost"},
		{"10.0.0.5", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "10.0.0.5", ""},
		{"127.0.0.1", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "127.0.0.1", ""},
		{"2001:DB8::0:1", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "2001:db8::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			b, err := envoybootstrap.Build(envoybootstrap.Params{Mesh: "m", Name: "n", XDSHost: tt.host, XDSPort: 5679, Token: "t", CACertFile: "/ca.pem"})
			if err != nil {
				t.Fatal(err)
			}
			js, err := envoybootstrap.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := envoybootstrap.Parse(js)
			if err != nil {
				t.Fatal(err)
			}
			clusters := parsed.GetStaticResources().GetClusters()
			if len(clusters) != 1 {
				t.Fatalf("%d static clusters", len(clusters))
			}
			var up tlsv3.UpstreamTlsContext
			if err := clusters[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
				t.Fatal(err)
			}
			if up.GetSni() != tt.sni {
				t.Errorf("SNI = %q, want %q", up.GetSni(), tt.sni)
			}
			vc := up.GetCommonTlsContext().GetValidationContext()
			if vc.GetTrustedCa().GetFilename() != "/ca.pem" {
				t.Errorf("trusted CA = %q", vc.GetTrustedCa().GetFilename())
			}
			ms := vc.GetMatchTypedSubjectAltNames()
			if len(ms) != 1 {
				t.Fatalf("SAN matchers = %v, want exactly one for %s", ms, tt.host)
			}
			m := ms[0]
			if m.GetSanType() != tt.sanType || m.GetMatcher().GetExact() != tt.san {
				t.Errorf("SAN matcher = %s %q, want %s %q", m.GetSanType(), m.GetMatcher().GetExact(), tt.sanType, tt.san)
			}
			if tt.sanType == tlsv3.SubjectAltNameMatcher_DNS && !m.GetMatcher().GetIgnoreCase() {
				t.Error("DNS SAN matcher is case-sensitive; DNS names are not")
			}
		})
	}
}
