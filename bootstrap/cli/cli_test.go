package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecsmesh/ecsmesh/bootstrap/agent"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvAndFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *cobra.Command)
	}{
		{"env fills flags", nil, map[string]string{"KUMA_CONTROL_PLANE_URL": "https://cp:5678", "KUMA_DATAPLANE_DRAIN_TIME": "45s", "ECSMESH_AWSIAM_SERVER_ID": "prod", "KUMA_DATAPLANE_RUNTIME_RESOURCE_VARS": "a=1, b=2"},
			func(t *testing.T, c *cobra.Command) {
				f := c.Flags()
				if v, _ := f.GetString("cp-address"); v != "https://cp:5678" {
					t.Errorf("cp-address %q", v)
				}
				if v, _ := f.GetDuration("drain-time"); v.String() != "45s" {
					t.Errorf("drain-time %v", v)
				}
				if v, _ := f.GetStringArray("dataplane-var"); strings.Join(v, ";") != "a=1;b=2" {
					t.Errorf("vars %v", v)
				}
			}},
		{"flags beat env", []string{"--cp-address", "https://flag:1"}, map[string]string{"KUMA_CONTROL_PLANE_URL": "https://env:2"},
			func(t *testing.T, c *cobra.Command) {
				if v, _ := c.Flags().GetString("cp-address"); v != "https://flag:1" {
					t.Errorf("cp-address %q", v)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := runCommand(context.Background(), &bytes.Buffer{}, lookupFrom(tt.env))
			cmd.RunE = func(c *cobra.Command, _ []string) error {
				var o options
				if err := o.fromEnv(c, lookupFrom(tt.env)); err != nil {
					return err
				}
				tt.check(t, c)
				return nil
			}
			cmd.SetArgs(tt.args)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
		})
	}
	cmd := runCommand(context.Background(), &bytes.Buffer{}, lookupFrom(nil))
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		var o options
		return o.fromEnv(c, lookupFrom(map[string]string{"KUMA_DATAPLANE_DRAIN_TIME": "soon"}))
	}
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "KUMA_DATAPLANE_DRAIN_TIME") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestTemplateSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dp.yaml")
	if err := os.WriteFile(file, []byte("type: Dataplane # from file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    options
		want string
		err  string
	}{
		{"inline content (KUMA_DATAPLANE_RUNTIME_RESOURCE)", options{dataplane: "type: Dataplane\n"}, "type: Dataplane\n", ""},
		{"file", options{dataplaneFile: file}, "type: Dataplane # from file\n", ""},
		{"inline value naming a file", options{dataplane: file}, "type: Dataplane # from file\n", ""},
		{"both", options{dataplane: "x: y", dataplaneFile: file}, "", "not both"},
		{"none", options{}, "", "KUMA_DATAPLANE_RUNTIME_RESOURCE"},
		{"missing file", options{dataplaneFile: filepath.Join(dir, "nope")}, "", "reading --dataplane-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.o.template()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestReadyCommand(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"ready"}, &out, &out, lookupFrom(map[string]string{"KUMA_READINESS_PORT": port})); err != nil {
		t.Fatal(err)
	}
	ready = false
	err := Run(context.Background(), []string{"ready", "--readiness-port", port}, &out, &out, lookupFrom(nil))
	if err == nil || !strings.Contains(err.Error(), "draining") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunReportsConfigurationErrors(t *testing.T) {
	ca := writeTestCA(t)
	// base is a configuration that passes every check but the one a row
	// breaks.
	base := func(extra ...string) []string {
		return append([]string{"run", "--dataplane", "type: Dataplane", "--workdir", t.TempDir(), "--server-id", "prod-mesh", "--ca-cert-file", ca, "--metadata-uri", "http://127.0.0.1:1"}, extra...)
	}
	noFlag := func(args []string, flag string) []string {
		out := []string{}
		for i := 0; i < len(args); i++ {
			if args[i] == flag {
				i++
				continue
			}
			out = append(out, args[i])
		}
		return out
	}
	tests := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{base("--dataplane-var", "novalue"), nil, []string{"--dataplane-var"}},
		{noFlag(base(), "--metadata-uri"), nil, []string{"ECS_CONTAINER_METADATA_URI_V4"}},
		{base("--ca-cert-file", "/nonexistent"), nil, []string{"--ca-cert-file"}},
		{base("--auth-type", "token"), nil, []string{"--auth-type"}},
		{base("--log-level", "loud"), nil, []string{"--log-level"}},
		// Plain HTTP: logins and tokens would travel in clear.
		{base("--cp-address", "http://ecsmesh-cp:5678"), nil, []string{"--cp-address", "https://", "tokens"}},
		{base(), map[string]string{"KUMA_CONTROL_PLANE_URL": "http://ecsmesh-cp:5678"}, []string{"--cp-address", "KUMA_CONTROL_PLANE_URL"}},
		// No pinned CA and no explicit choice of the system roots.
		{noFlag(base(), "--ca-cert-file"), nil, []string{"--ca-cert-file", "--ca-cert", "--use-system-ca-certs", "ECSMESH_DP_USE_SYSTEM_CA_CERTS"}},
		{base("--use-system-ca-certs"), nil, []string{"not both"}},
		// The login's signed server ID must be this deployment's, never a
		// default every deployment shares.
		{noFlag(base(), "--server-id"), nil, []string{"--server-id", "ECSMESH_AWSIAM_SERVER_ID", "--auth-type aws"}},
	}
	for _, tt := range tests {
		err := Run(context.Background(), tt.args, &bytes.Buffer{}, &bytes.Buffer{}, lookupFrom(tt.env))
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v %v: err = %v, want %q", tt.args, tt.env, err, w)
			}
		}
	}
	if names := strings.Join(EnvNames(), " "); !strings.Contains(names, "KUMA_CONTROL_PLANE_URL") || !strings.Contains(names, "KUMA_DATAPLANE_RUNTIME_RESOURCE") {
		t.Fatalf("EnvNames = %s", names)
	}
}

// writeTestCA writes a self-signed CA certificate and returns its path.
func writeTestCA(t *testing.T) string {
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
	p := filepath.Join(t.TempDir(), "cp-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTrustAndServerIDFromEnv: the CA, the system-roots choice and the
// server ID reach the agent's configuration from their variables; with
// --auth-type none no server ID is needed.
func TestTrustAndServerIDFromEnv(t *testing.T) {
	ca := writeTestCA(t)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, o *options, cfg agent.Config)
	}{
		{"pinned CA file", nil, map[string]string{"KUMA_CONTROL_PLANE_CA_CERT_FILE": ca, "ECSMESH_AWSIAM_SERVER_ID": "prod-mesh"},
			func(t *testing.T, o *options, cfg agent.Config) {
				if cfg.CACertFile != ca || cfg.SystemCACerts || o.serverID != "prod-mesh" {
					t.Errorf("CACertFile %q SystemCACerts %v serverID %q", cfg.CACertFile, cfg.SystemCACerts, o.serverID)
				}
			}},
		{"system roots", nil, map[string]string{"ECSMESH_DP_USE_SYSTEM_CA_CERTS": "true", "ECSMESH_AWSIAM_SERVER_ID": "prod-mesh"},
			func(t *testing.T, _ *options, cfg agent.Config) {
				if cfg.CACertFile != "" || !cfg.SystemCACerts {
					t.Errorf("CACertFile %q SystemCACerts %v", cfg.CACertFile, cfg.SystemCACerts)
				}
			}},
		{"auth none needs no server ID", []string{"--auth-type", "none"}, map[string]string{"KUMA_CONTROL_PLANE_CA_CERT_FILE": ca},
			func(t *testing.T, _ *options, cfg agent.Config) {
				if cfg.AuthType != agent.AuthNone {
					t.Errorf("auth type %q", cfg.AuthType)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"KUMA_DATAPLANE_RUNTIME_RESOURCE": "type: Dataplane", ecsmeta.EnvURI: "http://127.0.0.1:1", "KUMA_DATAPLANE_RUNTIME_CONFIG_DIR": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			cmd, o := newRunCommand(context.Background(), &bytes.Buffer{}, lookupFrom(env))
			cmd.RunE = func(c *cobra.Command, _ []string) error {
				if err := o.fromEnv(c, lookupFrom(env)); err != nil {
					return err
				}
				cfg, err := o.agentConfig(context.Background(), slog.New(slog.DiscardHandler))
				if err != nil {
					return err
				}
				if _, err := agent.New(cfg); err != nil {
					return err
				}
				tt.check(t, o, cfg)
				return nil
			}
			cmd.SetArgs(tt.args)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
