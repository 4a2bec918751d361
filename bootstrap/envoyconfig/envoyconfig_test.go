package envoyconfig_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/bootstrap/envoyconfig"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name   string
		p      envoyconfig.Params
		checks []string
		absent []string
	}{
		{
			name:   "reloadable token through file_based_metadata",
			p:      envoyconfig.Params{Mesh: "default", Name: "web-1", Service: "web", XDSHost: "cp.mesh.local", XDSPort: 5679, CACertFile: "/etc/ecsmesh/cp-ca.pem", TokenFile: "/tmp/token", Metadata: map[string]string{envoyconfig.MetaBindOutbounds: "true"}},
			checks: []string{`"id": "default.web-1"`, `"cluster": "web"`, envoyconfig.FileBasedMetadata, `"filename": "/tmp/token"`, `"headerPrefix": "Bearer "`, `"targetUri": "cp.mesh.local:5679"`, `"filename": "/etc/ecsmesh/cp-ca.pem"`, `"ecsmesh.io/bind-outbounds": "true"`, envoyconfig.WasmFilterPath, envoyconfig.GoFilterPath, `"address": "127.0.0.1"`, `"portValue": 9901`},
			absent: []string{"staticResources", "secret-token"},
		},
		{
			name:   "inline token over a static TLS cluster",
			p:      envoyconfig.Params{Mesh: "default", Name: "web-1", XDSHost: "10.0.0.5", XDSPort: 5679, Token: "secret-token", AdminPort: 9902},
			checks: []string{`"value": "Bearer secret-token"`, envoyconfig.ADSClusterName, `"type": "STATIC"`, envoyconfig.DefaultCABundle, `"portValue": 9902`, `"address": "10.0.0.5"`},
			absent: []string{"googleGrpc", `"sni"`}, // no SNI for an IP address (RFC 6066)
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := envoyconfig.Build(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			js, err := envoyconfig.Marshal(b)
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
			if _, err := envoyconfig.Parse(js); err != nil {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		p    envoyconfig.Params
		want string
	}{
		{"no name", envoyconfig.Params{Mesh: "m", XDSHost: "h", XDSPort: 1, Token: "t"}, "mesh and name"},
		{"bad port", envoyconfig.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 70000, Token: "t"}, "invalid xDS address"},
		{"no token", envoyconfig.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 1}, "token"},
		{"bad admin port", envoyconfig.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 1, Token: "t", AdminPort: 70000}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := envoyconfig.Build(tt.p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	for _, bad := range []string{`{`, `{"node": {"id": 1}}`, `{"unknownField": true}`, `{"admin": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 99999}}}}`} {
		if _, err := envoyconfig.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := envoyconfig.Build(envoyconfig.Params{Mesh: "m", Name: "n", XDSHost: "h", XDSPort: 1, TokenFile: "/t"})
	js, _ := envoyconfig.Marshal(b)
	f.Add(js)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = envoyconfig.Parse(data)
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
