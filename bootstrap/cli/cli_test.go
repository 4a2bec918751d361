package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"run", "--dataplane", "type: Dataplane", "--dataplane-var", "novalue", "--workdir", t.TempDir()}, nil, "--dataplane-var"},
		{[]string{"run", "--dataplane", "type: Dataplane", "--workdir", t.TempDir()}, nil, "ECS_CONTAINER_METADATA_URI_V4"},
		{[]string{"run", "--dataplane", "type: Dataplane", "--workdir", t.TempDir(), "--ca-cert-file", "/nonexistent"}, nil, "--ca-cert-file"},
		{[]string{"run", "--dataplane", "type: Dataplane", "--workdir", t.TempDir(), "--auth-type", "token", "--metadata-uri", "http://127.0.0.1:1"}, nil, "--auth-type"},
		{[]string{"run", "--dataplane", "type: Dataplane", "--workdir", t.TempDir(), "--log-level", "loud"}, nil, "--log-level"},
	}
	for _, tt := range tests {
		err := Run(context.Background(), tt.args, &bytes.Buffer{}, &bytes.Buffer{}, lookupFrom(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
	if names := strings.Join(EnvNames(), " "); !strings.Contains(names, "KUMA_CONTROL_PLANE_URL") || !strings.Contains(names, "KUMA_DATAPLANE_RUNTIME_RESOURCE") {
		t.Fatalf("EnvNames = %s", names)
	}
}
