// Package artifact builds the proxy-wasm plugins the benchmarks and tests
// load: packages of this module (the filter, the baseline plugins) and the
// proxy-wasm Go SDK's own examples, which are a separate module that is not
// in the SDK's module zip. Plugins are built with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared into a directory,
// once per Set.
package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// SDKPath is the module path of the proxy-wasm Go SDK.
const SDKPath = "github.com/proxy-wasm/proxy-wasm-go-sdk"

// FilterPackage is the import path of the ecsmesh filter's wasm main.
const FilterPackage = "github.com/ecsmesh/ecsmesh/filter/cmd/wasm"

// Set builds plugins into Dir and remembers what it built.
type Set struct {
	// Dir receives the .wasm files.
	Dir string

	mu    sync.Mutex
	built map[string]string
}

// NewSet returns a Set writing into dir.
func NewSet(dir string) *Set { return &Set{Dir: dir, built: map[string]string{}} }

// Filter returns the ecsmesh filter plugin: $ECSMESH_FILTER_WASM when set,
// else a fresh build of FilterPackage.
func (s *Set) Filter(ctx context.Context) (string, error) {
	if p := os.Getenv("ECSMESH_FILTER_WASM"); p != "" {
		return p, nil
	}
	return s.Package(ctx, FilterPackage, "ecsmesh-filter")
}

// BaselineRevision is the commit whose filter is the benchmarks' baseline
// row: main before the per-request work on the filter (issue 15), so that
// "today's" cost is measured in the same run as the current one.
const BaselineRevision = "79f4bce"

// Baseline returns the filter as of BaselineRevision:
// $ECSMESH_BASELINE_WASM when set, else a build of FilterPackage from that
// commit of this repository (git archive into a temporary directory).
func (s *Set) Baseline(ctx context.Context) (string, error) {
	if p := os.Getenv("ECSMESH_BASELINE_WASM"); p != "" {
		return p, nil
	}
	return s.Revision(ctx, BaselineRevision, FilterPackage, "ecsmesh-filter-"+BaselineRevision)
}

// Revision builds a wasip1 main package of this repository as it was at
// commit rev, with the modules in the module cache.
func (s *Set) Revision(ctx context.Context, rev, importPath, name string) (string, error) {
	return s.once(name, func(out string) error {
		top, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			return fmt.Errorf("artifact: %s at %s needs the git repository (set ECSMESH_BASELINE_WASM to a prebuilt .wasm instead): %w", importPath, rev, err)
		}
		tmp, err := os.MkdirTemp("", "ecsmesh-rev-")
		if err != nil {
			return fmt.Errorf("artifact: creating a temp dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		archive := exec.CommandContext(ctx, "git", "-C", strings.TrimSpace(string(top)), "archive", "--format=tar", rev)
		untar := exec.CommandContext(ctx, "tar", "-x", "-C", tmp)
		pipe, err := archive.StdoutPipe()
		if err != nil {
			return fmt.Errorf("artifact: git archive: %w", err)
		}
		untar.Stdin = pipe
		var stderr bytes.Buffer
		archive.Stderr, untar.Stderr = &stderr, &stderr
		if err := untar.Start(); err != nil {
			return fmt.Errorf("artifact: tar: %w", err)
		}
		aerr := archive.Run()
		uerr := untar.Wait()
		if aerr != nil || uerr != nil {
			return fmt.Errorf("artifact: extracting commit %s: %v %v: %s", rev, aerr, uerr, stderr.String())
		}
		return build(ctx, tmp, importPath, out, "GOWORK=off")
	})
}

// Package builds a wasip1 main package of the current module as name.wasm.
func (s *Set) Package(ctx context.Context, importPath, name string) (string, error) {
	return s.once(name, func(out string) error {
		return build(ctx, "", importPath, out)
	})
}

func (s *Set) once(name string, f func(out string) error) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.built[name]; ok {
		return p, nil
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return "", fmt.Errorf("artifact: creating %s: %w", s.Dir, err)
	}
	out := filepath.Join(s.Dir, name+".wasm")
	if err := f(out); err != nil {
		return "", err
	}
	s.built[name] = out
	return out, nil
}

// build runs go build for wasip1 in dir ("" = the current directory).
func build(ctx context.Context, dir, pkg, out string, env ...string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm"), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("artifact: building %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Module is a module as go list -m -json reports it.
type Module struct {
	Path, Version, Dir string
}

// SDK returns the proxy-wasm Go SDK module this module requires, as
// downloaded in the module cache.
func SDK(ctx context.Context) (Module, error) {
	var m Module
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", SDKPath)
	out, err := cmd.Output()
	if err != nil {
		return m, fmt.Errorf("artifact: finding the SDK module: %w", err)
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("artifact: reading go list output: %w", err)
	}
	if m.Dir == "" {
		return m, fmt.Errorf("artifact: SDK %s@%s is not in the module cache (run go mod download)", m.Path, m.Version)
	}
	return m, nil
}

// ExampleCacheDir is where SDK example sources are kept between runs:
// <os.UserCacheDir>/ecsmesh/sdk-examples/<sdk version>.
func ExampleCacheDir(sdkVersion string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "ecsmesh", "sdk-examples", sdkVersion)
}

// SDKExample builds the SDK's own examples/<name> plugin at the SDK version
// this module requires, unchanged, against the SDK in the module cache. The
// example's source is taken from, in order: $ECSMESH_SDK_EXAMPLES/<name> (a
// checkout's examples directory), ExampleCacheDir, the SDK's module
// directory, then the Go module proxy (the examples are nested modules; their
// pseudo-version shares the SDK's commit), whose copy is then kept in
// ExampleCacheDir. It returns the .wasm path and where the source came from.
func (s *Set) SDKExample(ctx context.Context, name string) (path, source string, err error) {
	path, err = s.once("sdk-example-"+name, func(out string) error {
		sdk, err := SDK(ctx)
		if err != nil {
			return err
		}
		src, err := exampleSource(ctx, sdk, name)
		if err != nil {
			return err
		}
		source = src
		return buildExample(ctx, sdk, name, src, out)
	})
	return path, source, err
}

func exampleSource(ctx context.Context, sdk Module, name string) (string, error) {
	var tried []string
	candidates := []string{}
	if d := os.Getenv("ECSMESH_SDK_EXAMPLES"); d != "" {
		candidates = append(candidates, filepath.Join(d, name))
	}
	cached := filepath.Join(ExampleCacheDir(sdk.Version), name)
	candidates = append(candidates, cached, filepath.Join(sdk.Dir, "examples", name))
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "main.go")); err == nil {
			return c, nil
		}
		tried = append(tried, c)
	}
	modPath := SDKPath + "/examples/" + name
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modPath+"@"+sdk.Version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, _ := cmd.Output() // the JSON carries the error
	var dl struct{ Dir, Error string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		reason := dl.Error
		if reason == "" && err != nil {
			reason = err.Error()
		}
		return "", fmt.Errorf("artifact: SDK example %s not found (tried %s) and not downloadable from the Go module proxy: %s",
			name, strings.Join(tried, ", "), reason)
	}
	if err := copyGoFiles(dl.Dir, cached, true); err != nil {
		return dl.Dir, nil //nolint:nilerr // keeping a copy is best effort
	}
	return cached, nil
}

// buildExample builds the example's sources in a temporary module that
// replaces the SDK with the copy in the module cache.
func buildExample(ctx context.Context, sdk Module, name, src, out string) error {
	tmp, err := os.MkdirTemp("", "ecsmesh-sdk-example-")
	if err != nil {
		return fmt.Errorf("artifact: creating a temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyGoFiles(src, tmp, false); err != nil {
		return err
	}
	gomod := exampleGoMod(src, name, sdk)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), gomod, 0o644); err != nil {
		return fmt.Errorf("artifact: writing go.mod: %w", err)
	}
	return build(ctx, tmp, ".", out, "GOFLAGS=-mod=mod", "GOWORK=off")
}

// exampleGoMod is the example's go.mod without its replace directives, plus a
// requirement on and a replacement by the cached SDK.
func exampleGoMod(src, name string, sdk Module) []byte {
	var b bytes.Buffer
	if orig, err := os.ReadFile(filepath.Join(src, "go.mod")); err == nil {
		inReplace := false
		for _, line := range strings.Split(string(orig), "\n") {
			t := strings.TrimSpace(line)
			switch {
			case inReplace:
				inReplace = t != ")"
				continue
			case t == "replace (":
				inReplace = true
				continue
			case strings.HasPrefix(t, "replace "), strings.HasPrefix(t, SDKPath+" "):
				continue
			}
			b.WriteString(line + "\n")
		}
	} else {
		fmt.Fprintf(&b, "module %s/examples/%s\n\ngo 1.24\n", SDKPath, name)
	}
	fmt.Fprintf(&b, "\nrequire %s %s\n\nreplace %s => %s\n", SDKPath, sdk.Version, SDKPath, sdk.Dir)
	return b.Bytes()
}

// copyGoFiles copies the .go files (and go.mod, go.sum when withMod) of src
// into dst; test files are left out.
func copyGoFiles(src, dst string, withMod bool) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("artifact: reading %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("artifact: creating %s: %w", dst, err)
	}
	for _, e := range entries {
		n := e.Name()
		keep := strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") ||
			withMod && (n == "go.mod" || n == "go.sum")
		if e.IsDir() || !keep {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return fmt.Errorf("artifact: reading %s: %w", n, err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o644); err != nil {
			return fmt.Errorf("artifact: writing %s: %w", n, err)
		}
	}
	return nil
}
