package policy

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestResolveGolden resolves every testdata/*.yaml (Dataplanes and
// policies) and compares, per Dataplane and kind, the merged configuration
// of each destination and each inbound with the .golden file next to it.
func TestResolveGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := resource.Decode(in)
			if err != nil {
				t.Fatal(err)
			}
			got := resolveAll(t, docs)
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden (run with -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("resolution of %s:\n--- got\n%s\n--- want\n%s", f, got, want)
			}
		})
	}
}

// resolved is what the golden files show for one Dataplane and kind.
type resolved struct {
	// To maps a destination ("backend" or "backend{version=v2}") to its
	// merged conf; destinations nothing applies to are absent.
	To map[string]any `json:"to,omitempty"`
	// From maps an inbound ("inbound[0] web") to its merged conf per
	// caller subset, the most specific first.
	From map[string]any `json:"from,omitempty"`
}

type withOrigins struct {
	Conf    any      `json:"conf"`
	Origins []string `json:"origins"`
}

type subsetConf struct {
	Callers string   `json:"callers"`
	Conf    any      `json:"conf"`
	Origins []string `json:"origins"`
}

func resolveAll(t *testing.T, docs []resource.Document) string {
	t.Helper()
	var dps []*resource.Dataplane
	byKind := map[string][]resource.Policy{}
	var kinds []string
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *resource.Dataplane:
			dps = append(dps, o)
		case resource.Policy:
			k := o.GetMeta().Type
			if byKind[k] == nil {
				kinds = append(kinds, k)
			}
			byKind[k] = append(byKind[k], o)
		}
	}
	dests := destinations(dps, byKind)
	var b strings.Builder
	for _, dp := range dps {
		for _, k := range kinds {
			r := resolved{To: map[string]any{}, From: map[string]any{}}
			out := Outbound(byKind[k], dp)
			for _, dest := range dests {
				if v := resolveTo(t, k, out, dest); v != nil {
					r.To[destName(dest)] = v
				}
			}
			for i, in := range Inbound(byKind[k], dp) {
				if v := resolveFrom(t, k, in); v != nil {
					r.From[fmt.Sprintf("inbound[%d] %s", i, dp.Networking.Inbound[i].Service())] = v
				}
			}
			js, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "# Dataplane %s, %s\n%s\n", dp.Name, k, js)
		}
	}
	return b.String()
}

// destinations are every service of the file and every subset a route
// backend names.
func destinations(dps []*resource.Dataplane, byKind map[string][]resource.Policy) []Subset {
	seen := map[string]bool{}
	var out []Subset
	add := func(s Subset) {
		if k := subsetKey(s); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	for _, dp := range dps {
		for _, s := range dp.Services() {
			add(Service(s))
		}
	}
	for _, ps := range byKind {
		for _, p := range ps {
			to, _ := p.Entries()
			for _, e := range to {
				if e.TargetRef.Kind == resource.TargetMeshService {
					add(Service(e.TargetRef.Name))
				}
				var refs []resource.BackendRef
				switch d := e.Default.(type) {
				case []resource.HTTPRouteRule:
					for _, r := range d {
						refs = append(refs, r.Default.BackendRefs...)
					}
				case resource.TCPRouteConf:
					refs = d.BackendRefs
				}
				for _, br := range refs {
					add(BackendSubset(br))
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Subset) int { return strings.Compare(destName(a), destName(b)) })
	return out
}

func destName(s Subset) string {
	name := s[resource.TagService]
	var tags []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if k != resource.TagService {
			tags = append(tags, k+"="+s[k])
		}
	}
	if len(tags) > 0 {
		name += "{" + strings.Join(tags, ",") + "}"
	}
	if name == "" {
		return "{}"
	}
	return name
}

func origins(os []Origin) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.String()
	}
	return out
}

func resolveTo(t *testing.T, kind string, r Rules, dest Subset) any {
	t.Helper()
	switch kind {
	case resource.KindMeshHTTPRoute:
		if len(dest) > 1 {
			return nil // routes apply to calls to a service, not to a subset
		}
		rules, err := HTTPRouteRules(r, dest)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) == 0 {
			return nil
		}
		return SortRoutes(rules)
	case resource.KindMeshTimeout:
		return conf[resource.MeshTimeoutConf](t, r, dest)
	case resource.KindMeshRetry:
		return conf[resource.MeshRetryConf](t, r, dest)
	case resource.KindMeshCircuitBreaker:
		return conf[resource.MeshCircuitBreakerConf](t, r, dest)
	case resource.KindMeshHealthCheck:
		return conf[resource.MeshHealthCheckConf](t, r, dest)
	case resource.KindMeshTCPRoute:
		return conf[resource.TCPRouteConf](t, r, dest)
	}
	if len(r.For(dest)) > 0 {
		t.Fatalf("%s has to entries", kind)
	}
	return nil
}

func conf[C any](t *testing.T, r Rules, dest Subset) any {
	t.Helper()
	c, o, ok, err := Conf[C](r, dest)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return nil
	}
	return withOrigins{Conf: c, Origins: origins(o)}
}

func resolveFrom(t *testing.T, kind string, r Rules) any {
	t.Helper()
	if len(r) == 0 {
		return nil
	}
	switch kind {
	case resource.KindMeshTimeout:
		return bySubset[resource.MeshTimeoutConf](t, r)
	case resource.KindMeshCircuitBreaker:
		return bySubset[resource.MeshCircuitBreakerConf](t, r)
	case resource.KindMeshRateLimit:
		return bySubset[resource.MeshRateLimitConf](t, r)
	case resource.KindMeshFaultInjection:
		return bySubset[resource.MeshFaultInjectionConf](t, r)
	}
	t.Fatalf("%s has from entries", kind)
	return nil
}

func bySubset[C any](t *testing.T, r Rules) any {
	t.Helper()
	subsets, err := BySubset[C](r)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]subsetConf, len(subsets))
	for i, s := range subsets {
		out[i] = subsetConf{Callers: destName(s.Subset), Conf: s.Conf, Origins: origins(s.Origins)}
	}
	return out
}
