package envoyversion_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/envoyversion"
)

const root = "../.."

func read(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestGoModMatches: the Go filter's API module is the release the image runs.
func TestGoModMatches(t *testing.T) {
	m := regexp.MustCompile(`(?m)^\s*github\.com/envoyproxy/envoy (v\S+)`).FindStringSubmatch(read(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod requires no github.com/envoyproxy/envoy")
	}
	if m[1] != "v"+envoyversion.Version {
		t.Errorf("go.mod has github.com/envoyproxy/envoy %s, envoyversion.Version is %s: the Go filter only loads in the Envoy it was built against; change both together", m[1], envoyversion.Version)
	}
}

// TestSidecarDockerfile: base image, user and the files the agent expects.
func TestSidecarDockerfile(t *testing.T) {
	var from []string
	copies := map[string]string{}
	user := ""
	for _, line := range strings.Split(read(t, "images/sidecar.Dockerfile"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			from = append(from, f[1])
		case "COPY":
			if len(f) == 3 {
				copies[f[2]] = f[1]
			}
		case "USER":
			user = f[1]
		}
	}
	if len(from) == 0 || from[len(from)-1] != envoyversion.Image {
		t.Errorf("images/sidecar.Dockerfile final stage is FROM %v, want %s (envoyversion.Image)", from, envoyversion.Image)
	}
	if user != "101:101" {
		t.Errorf("images/sidecar.Dockerfile USER %q, want 101:101 (the base image's envoy user, never root)", user)
	}
	for dst, src := range map[string]string{
		"/usr/local/bin/ecsmesh-dp":        "build/ecsmesh-dp",
		"/etc/ecsmesh/ecsmesh-filter.wasm": "build/ecsmesh-filter.wasm",
		"/etc/ecsmesh/ecsmesh-filter.so":   "build/ecsmesh-filter.so",
	} {
		if copies[dst] != src {
			t.Errorf("images/sidecar.Dockerfile copies %q to %s, want %s", copies[dst], dst, src)
		}
	}
	for _, v := range regexp.MustCompile(`v1\.\d+\.\d+`).FindAllString(read(t, "images/sidecar.Dockerfile"), -1) {
		if v != "v"+envoyversion.Version {
			t.Errorf("images/sidecar.Dockerfile mentions %s, not the Envoy release v%s", v, envoyversion.Version)
		}
	}
}

// TestDocsListFeatures: docs/envoy.md names the release and every feature
// with its minimum version.
func TestDocsListFeatures(t *testing.T) {
	doc := read(t, "docs/envoy.md")
	if !strings.Contains(doc, envoyversion.Image) {
		t.Errorf("docs/envoy.md does not name the image %s", envoyversion.Image)
	}
	if !strings.Contains(doc, "**"+envoyversion.MinVersion()+"**") {
		t.Errorf("docs/envoy.md does not state the minimum for the .wasm form, **%s**", envoyversion.MinVersion())
	}
	for _, f := range envoyversion.Features {
		if !strings.Contains(doc, "| "+f.Name+" | "+f.Since+" |") {
			t.Errorf("docs/envoy.md has no row %q", "| "+f.Name+" | "+f.Since+" |")
		}
	}
}

// TestFeaturesCoverGeneratedConfig: every type URL in the bootstrap and in
// the generated resources (the control plane's golden files) belongs to a
// listed feature, and every listed marker is used somewhere, so that a new
// Envoy extension in the configuration cannot go undocumented and a
// removed one does not linger.
func TestFeaturesCoverGeneratedConfig(t *testing.T) {
	b, err := envoybootstrap.Build(envoybootstrap.Params{Mesh: "default", Name: "web-1", Service: "web",
		XDSHost: "cp.mesh.local", XDSPort: 5679, TokenFile: "/tmp/token"})
	if err != nil {
		t.Fatal(err)
	}
	bj, err := envoybootstrap.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	// Marshal leaves out the top-level type; Envoy reads it as a Bootstrap.
	docs := []string{`{"@type": "type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap"}`, string(bj)}
	golden, err := filepath.Glob(filepath.Join(root, "controlplane/xds/generate/testdata/*.json"))
	policyGolden, _ := filepath.Glob(filepath.Join(root, "controlplane/xds/generate/testdata/policy/*.json"))
	golden = append(golden, policyGolden...)
	if err != nil || len(golden) == 0 {
		t.Fatalf("no golden files under controlplane/xds/generate/testdata: %v", err)
	}
	for _, g := range golden {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(data))
	}
	used := map[string]bool{}
	for _, d := range docs {
		var v any
		if err := json.Unmarshal([]byte(d), &v); err != nil {
			t.Fatal(err)
		}
		walk(v, used)
	}
	var markers []string
	for _, f := range envoyversion.Features {
		if envoyversion.Less(envoyversion.Version, f.Since) {
			t.Errorf("feature %q needs Envoy %s, newer than %s", f.Name, f.Since, envoyversion.Version)
		}
		for _, m := range f.Markers {
			markers = append(markers, m)
			if !used[m] {
				t.Errorf("feature %q: marker %s appears in neither the bootstrap nor the generated resources; drop it or fix it", f.Name, m)
			}
		}
	}
	for k := range used {
		if strings.HasPrefix(k, "type.googleapis.com/") && !slices.Contains(markers, k) {
			t.Errorf("the configuration uses %s, which no envoyversion.Features entry lists: add it with the first Envoy release that has it, and a row in docs/envoy.md", k)
		}
	}
}

// walk records every object key and every "@type" value.
func walk(v any, used map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			used[k] = true
			if s, ok := x.(string); ok && k == "@type" {
				used[s] = true
			}
			walk(x, used)
		}
	case []any:
		for _, x := range v {
			walk(x, used)
		}
	}
}

func TestLess(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"1.13", "1.17", true},
		{"1.9", "1.13", true},
		{"1.39", "1.39.0", false},
		{"1.39.0", "1.39", false},
		{"1.39.1", "1.39.0", false},
		{"1.39.0", "1.39.1", true},
		{"2.0", "1.99", false},
	} {
		if got := envoyversion.Less(tt.a, tt.b); got != tt.want {
			t.Errorf("Less(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
