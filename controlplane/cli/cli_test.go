package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/admin"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

func run(t *testing.T, api string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Lookup: func(k string) (string, bool) {
		if k == "ECSMESH_API" {
			return api, true
		}
		return "", false
	}}
	err := Run(context.Background(), args, env)
	return out.String(), errOut.String(), err
}

func TestApplyGetDelete(t *testing.T) {
	srv := httptest.NewServer(admin.Handler(admin.Options{Manager: manager.New(memory.New(nil))}))
	defer srv.Close()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mixed := write("mixed.yaml", `type: Mesh
name: default
---
type: Dataplane
mesh: default
name: ok
networking: {address: 10.0.0.1, inbound: [{port: 15000, tags: {kuma.io/service: web}}]}
---
type: Dataplane
mesh: default
name: bad
networking: {address: 10.0.0.x, inbound: [{port: 15000, servicePort: 99999, tags: {kuma.io/service: web}}]}
`)
	_, _, err := run(t, srv.URL, "apply", "-f", mixed)
	if err == nil {
		t.Fatal("apply of a file with an invalid document succeeded")
	}
	for _, want := range []string{"nothing was stored", "document[2] (Dataplane bad): networking.address", "document[2] (Dataplane bad): networking.inbound[0].servicePort: must be in 1..65535"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("apply error lacks %q:\n%v", want, err)
		}
	}
	out, _, err := run(t, srv.URL, "get", "dataplanes")
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "NAME") {
		t.Fatalf("get dataplanes after a refused apply: %v\n%s", err, out)
	}
	valid := write("valid.yaml", strings.Join(strings.Split(string(must(os.ReadFile(mixed))), "---")[:2], "---"))
	out, _, err = run(t, srv.URL, "apply", "-f", valid)
	if err != nil || !strings.Contains(out, "dataplane default/ok applied") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	for _, kind := range []string{"dataplanes", "Dataplane", "DATAPLANES"} {
		out, _, err = run(t, srv.URL, "get", kind)
		if err != nil || !strings.Contains(out, "default   ok") {
			t.Errorf("get %s: %v\n%s", kind, err, out)
		}
	}
	out, _, err = run(t, srv.URL, "get", "dataplane", "ok", "-o", "json")
	if err != nil || !strings.Contains(out, `"address": "10.0.0.1"`) {
		t.Errorf("get -o json: %v\n%s", err, out)
	}
	out, _, err = run(t, srv.URL, "get", "dataplane", "ok", "-o", "yaml")
	if err != nil || !strings.Contains(out, "address: 10.0.0.1") {
		t.Errorf("get -o yaml: %v\n%s", err, out)
	}
	if _, _, err = run(t, srv.URL, "get", "gateways"); err == nil || !strings.Contains(err.Error(), `unknown kind "gateways"`) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, _, err = run(t, srv.URL, "get", "dataplane", "nope"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("missing resource: %v", err)
	}
	if _, _, err = run(t, srv.URL, "inspect", "dataplane", "ok"); err == nil || !strings.Contains(err.Error(), "MESH/NAME") {
		t.Errorf("inspect without mesh: %v", err)
	}
	if _, _, err = run(t, srv.URL, "delete", "dataplane", "ok"); err != nil {
		t.Fatal(err)
	}
	if _, _, err = run(t, srv.URL, "delete", "dataplane", "ok"); err == nil {
		t.Error("deleting twice succeeded")
	}
	if _, _, err = run(t, "http://127.0.0.1:1", "get", "meshes"); err == nil || !strings.Contains(err.Error(), "cannot reach the control plane admin API") {
		t.Errorf("unreachable API: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
