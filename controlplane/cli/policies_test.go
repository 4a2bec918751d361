package cli

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/admin"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

// TestPolicies applies, gets and deletes policy kinds with the CLI, which
// is generic over the kind registry.
func TestPolicies(t *testing.T) {
	srv := httptest.NewServer(admin.Handler(admin.Options{Manager: manager.New(memory.New(nil))}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(file, []byte(`type: Mesh
name: default
---
type: MeshTimeout
mesh: default
name: timeout-global
spec:
  to:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 20s}
---
type: MeshHTTPRoute
mesh: default
name: split
spec:
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      default:
        backendRefs:
        - {kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 90}
        - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, srv.URL, "apply", "-f", file)
	if err != nil || !strings.Contains(out, "default/timeout-global applied") || !strings.Contains(out, "default/split applied") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	for _, kind := range []string{"meshtimeouts", "MeshTimeout"} {
		out, _, err = run(t, srv.URL, "get", kind)
		if err != nil || !strings.Contains(out, "timeout-global") || !strings.Contains(out, "MeshTimeout") {
			t.Errorf("get %s: %v\n%s", kind, err, out)
		}
	}
	out, _, err = run(t, srv.URL, "get", "meshhttproute", "split", "-o", "yaml")
	if err != nil || !strings.Contains(out, "weight: 90") {
		t.Errorf("get meshhttproute split -o yaml: %v\n%s", err, out)
	}
	if _, _, err = run(t, srv.URL, "delete", "meshtimeout", "timeout-global"); err != nil {
		t.Fatal(err)
	}
	if _, _, err = run(t, srv.URL, "get", "meshtimeout", "timeout-global"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("get after delete: %v", err)
	}
}
