// Package layout checks the module's import graph: what ships links
// neither the dev harness nor the fakes, the control plane and the sidecar
// agent share only the api/ tree, and the filter core stands alone.
package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ecsmesh/ecsmesh/"

// deps runs `go list -deps`-style queries: for every package matching
// pattern, its own import path and its transitive non-test dependencies.
func deps(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, pattern)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", pattern, err, msg)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	if len(m) == 0 {
		t.Fatalf("go list %s: no packages", pattern)
	}
	return m
}

// rule: packages matching pattern must not depend on anything with one of
// the forbidden prefixes (module-relative unless they contain a dot).
type rule struct {
	pattern   string
	forbidden []string
	why       string
}

var rules = []rule{
	{"./controlplane/cmd/ecsmesh-cp", []string{"github.com/tetratelabs/wazero", "internal/test/", "internal/dev/", "bootstrap/", "bench/"},
		"the shipped control plane links no wasm runtime, no fake and no dev harness (those are ecsmesh-dev's)"},
	{"./bootstrap/cmd/ecsmesh-dp", []string{"github.com/tetratelabs/wazero", "internal/test/", "internal/dev/", "controlplane/", "bench/"},
		"the shipped sidecar agent links nothing of the control plane: the contract is in api/"},
	{"./controlplane/...", []string{"bootstrap/", "internal/test/", "internal/dev/", "bench/"},
		"the control plane reaches the sidecar only through api/"},
	{"./bootstrap/...", []string{"controlplane/", "internal/test/", "internal/dev/", "bench/"},
		"the agent reaches the control plane only through api/"},
	{"./api/...", []string{"controlplane/", "bootstrap/", "internal/", "bench/", "filter"},
		"api/ is the neutral contract both sides import; it imports neither"},
	{"./filter/...", []string{"controlplane/", "bootstrap/", "api/", "internal/test/", "internal/dev/", "bench/"},
		"the filter core is SDK-free and self-contained (it compiles to Wasm)"},
	{"./controlplane/xds/generate/...", []string{"controlplane/dns", "controlplane/store", "controlplane/vip", "github.com/aws/aws-sdk-go-v2"},
		"the generator is pure: no store, no VIP allocator, no DNS reconciler, no AWS SDK (hostname rendering is in api/resource)"},
	{"./controlplane/policy/...", []string{"controlplane/", "bootstrap/", "internal/", "bench/", "filter", "github.com/aws/aws-sdk-go-v2", "github.com/envoyproxy", "google.golang.org/grpc"},
		"the policy resolution is pure: it reads api/resource values and nothing else (no store, no xDS, no AWS)"},
}

func TestImportLayering(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pattern, func(t *testing.T) {
			for pkg, ds := range deps(t, r.pattern) {
				for _, d := range append([]string{pkg}, ds...) {
					for _, f := range r.forbidden {
						full := f
						if !strings.Contains(strings.SplitN(f, "/", 2)[0], ".") {
							full = module + f
						}
						if d != pkg && strings.HasPrefix(d, full) {
							t.Errorf("%s depends on %s: %s", strings.TrimPrefix(pkg, module), strings.TrimPrefix(d, module), r.why)
						}
					}
				}
			}
		})
	}
}
