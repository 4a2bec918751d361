package cli

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/admin"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/cp"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

const testToken = "admin-token-0123456789"

func runEnv(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	err := Run(context.Background(), args, e)
	return out.String(), err
}

// tlsAdmin is an admin API over HTTPS with a token, as the CP serves it
// off loopback; it returns its URL and the PEM of its CA.
func tlsAdmin(t *testing.T) (string, []byte, *[]string) {
	t.Helper()
	var seen []string
	h := admin.Handler(admin.Options{Manager: manager.New(memory.New(nil)), Token: testToken})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.Header.Get("Content-Type"))
		h.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), &seen
}

func TestCLITalksToAnHTTPSAdminAPI(t *testing.T) {
	url, caPEM, seen := tlsAdmin(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "cp-ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"ECSMESH_API": url, "ECSMESH_ADMIN_TOKEN": testToken}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	if _, err := runEnv(t, base, "get", "meshes"); err == nil || !strings.Contains(err.Error(), "--ca-cert-file") {
		t.Errorf("an unknown CA: %v; want an error naming --ca-cert-file", err)
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"--ca-cert-file":                     {base, []string{"--ca-cert-file", caFile}},
		"ECSMESH_API_CA_CERT_FILE":           {with("ECSMESH_API_CA_CERT_FILE", caFile), nil},
		"cp-ca.pem in ECSMESH_DATA_DIR":      {with("ECSMESH_DATA_DIR", dataDir), nil},
		"flag over a wrong environment file": {with("ECSMESH_API_CA_CERT_FILE", filepath.Join(dir, "nope.pem")), []string{"--ca-cert-file", caFile}},
	} {
		file := filepath.Join(dir, strings.NewReplacer("-", "", " ", "", ".", "", "/", "").Replace(name)+".yaml")
		if err := os.WriteFile(file, []byte("type: Mesh\nname: m"+string(rune('a'+len(name)%26))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := runEnv(t, tc.env, append(tc.args, "apply", "-f", file)...); err != nil || !strings.Contains(out, "applied") {
			t.Errorf("%s: apply: %v %s", name, err, out)
		}
		if out, err := runEnv(t, tc.env, append(tc.args, "get", "meshes")...); err != nil || !strings.Contains(out, "NAME") {
			t.Errorf("%s: get: %v %s", name, err, out)
		}
	}
	if _, err := runEnv(t, with("ECSMESH_API_CA_CERT_FILE", filepath.Join(dir, "nope.pem")), "get", "meshes"); err == nil || !strings.Contains(err.Error(), "ECSMESH_API_CA_CERT_FILE") {
		t.Errorf("a missing CA file: %v; want an error naming it", err)
	}
	for _, s := range *seen {
		if strings.HasPrefix(s, "POST") && s != "POST application/yaml" {
			t.Errorf("the CLI wrote with %q", s)
		}
	}
}

// TestCLIKeepsTheTokenOffPlainHTTP: the token is never sent in clear to
// anything but loopback (the CP serves HTTPS off loopback, so an http://
// URL naming another host is a mistake or an attacker).
func TestCLIKeepsTheTokenOffPlainHTTP(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[],"total":0}`))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	for _, api := range []string{"http://cp.example.invalid" + port, "http://10.1.2.3:5681"} {
		_, err := runEnv(t, map[string]string{"ECSMESH_API": api, "ECSMESH_ADMIN_TOKEN": testToken}, "get", "meshes")
		if err == nil || !strings.Contains(err.Error(), "https://") {
			t.Errorf("%s: %v; want a refusal asking for https://", api, err)
		}
	}
	for _, api := range []string{srv.URL, "http://localhost" + port} {
		if _, err := runEnv(t, map[string]string{"ECSMESH_API": api, "ECSMESH_ADMIN_TOKEN": testToken}, "get", "meshes"); err != nil {
			t.Errorf("%s: %v", api, err)
		}
	}
	if len(got) != 2 || got[0] != "Bearer "+testToken {
		t.Errorf("the loopback API saw %q; want the token twice", got)
	}
}

// TestCLIWithACPOffLoopback: a real CP bound off loopback serves its admin
// API over HTTPS; ecsmesh-cp on the same host finds cp-ca.pem through
// ECSMESH_DATA_DIR and sends the token.
func TestCLIWithACPOffLoopback(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{
		"ECSMESH_API_ADDR": "127.0.0.1:0", "ECSMESH_XDS_ADDR": "127.0.0.1:0", "ECSMESH_ADMIN_ADDR": "0.0.0.0:0",
		"ECSMESH_ADMIN_TOKEN": testToken, "ECSMESH_DATA_DIR": dataDir, "KUMA_STORE_TYPE": "memory",
		"ECSMESH_AWSIAM_SERVER_ID": "cp-cli-test",
	}
	cfg, err := config.Load(config.Flags{}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := cp.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-srv.Ready():
	case err := <-done:
		done <- err
		t.Fatalf("CP stopped: %v", err)
	}
	_, port, _ := net.SplitHostPort(srv.Addrs().Admin)
	file := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(file, []byte("type: Mesh\nname: default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := map[string]string{"ECSMESH_API": "https://127.0.0.1:" + port, "ECSMESH_ADMIN_TOKEN": testToken, "ECSMESH_DATA_DIR": dataDir}
	if out, err := runEnv(t, cli, "apply", "-f", file); err != nil || !strings.Contains(out, "mesh default applied") {
		t.Fatalf("apply over HTTPS: %v %s", err, out)
	}
	if out, err := runEnv(t, cli, "get", "meshes"); err != nil || !strings.Contains(out, "default") {
		t.Fatalf("get over HTTPS: %v %s", err, out)
	}
	cli["ECSMESH_API"] = "http://127.0.0.1:" + port
	if _, err := runEnv(t, cli, "get", "meshes"); err == nil || !strings.Contains(err.Error(), "use --api https://127.0.0.1:"+port) {
		t.Errorf("plain HTTP to the off-loopback admin API: %v; want advice to use https://", err)
	}
}
