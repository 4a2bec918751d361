package resource

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPolicyFixtures decodes Kuma's documented examples of every policy
// kind and of MeshTrafficPermission (testdata/policies/<kind>/*.yaml, written from the documented
// schema): each must decode and validate without warnings, be of the kind
// its directory names, have entries, and read back identically. The
// normalized form of each kind's examples is compared with
// testdata/policies/<kind>.golden.
func TestPolicyFixtures(t *testing.T) {
	entries, err := os.ReadDir("testdata/policies")
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("testdata/policies", e.Name()))
		}
	}
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		kind := filepath.Base(dir)
		t.Run(kind, func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			if len(files) < 3 {
				t.Fatalf("%d examples, want at least 3", len(files))
			}
			var golden strings.Builder
			for _, f := range files {
				in, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				docs, err := Decode(in)
				if err != nil {
					t.Errorf("%s: %v", f, err)
					continue
				}
				for _, d := range docs {
					checkFixture(t, f, kind, d)
					seen[d.Object.GetMeta().Type] = true
					out, _ := Marshal(d.Object)
					golden.WriteString("# " + filepath.Base(f) + "\n" + string(out) + "\n")
				}
			}
			compareGolden(t, filepath.Join("testdata/policies", kind+".golden"), golden.String())
		})
	}
	for _, k := range policyKinds() {
		if !seen[k] {
			t.Errorf("no fixture of kind %s", k)
		}
	}
}

func checkFixture(t *testing.T, file, dirKind string, d Document) {
	t.Helper()
	if len(d.Warnings) > 0 {
		t.Errorf("%s: warnings %v", file, d.Warnings)
	}
	if got := strings.ToLower(d.Object.GetMeta().Type); got != dirKind {
		t.Errorf("%s: kind %s in directory %s", file, got, dirKind)
	}
	switch p := d.Object.(type) {
	case *MeshTrafficPermission:
		// Not a merged Policy: its from entries resolve to SPIFFE IDs.
		if len(p.Spec.From) == 0 {
			t.Errorf("%s: no entries", file)
		}
	case Policy:
		if to, from := p.Entries(); len(to)+len(from) == 0 {
			t.Errorf("%s: no entries", file)
		}
	default:
		t.Fatalf("%s: %T is not a Policy", file, d.Object)
	}
	out, err := Marshal(d.Object)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := DecodeOne(out)
	if err != nil {
		t.Fatalf("%s: the marshalled form does not decode: %v\n%s", file, err, out)
	}
	if out2, _ := Marshal(again); !bytes.Equal(out, out2) {
		t.Errorf("%s: round trip changed the resource:\n%s\n%s", file, out, out2)
	}
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden (run with -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// policyKinds lists the kinds whose objects are policies.
func policyKinds() []string {
	var out []string
	for _, k := range Kinds() {
		if _, ok := k.New().(Policy); ok {
			out = append(out, k.Name)
		}
	}
	return out
}

func TestPolicyKindsRegistered(t *testing.T) {
	want := map[string]string{
		"MeshTimeout": "meshtimeouts", "MeshRetry": "meshretries", "MeshCircuitBreaker": "meshcircuitbreakers",
		"MeshHealthCheck": "meshhealthchecks", "MeshHTTPRoute": "meshhttproutes", "MeshTCPRoute": "meshtcproutes",
		"MeshRateLimit": "meshratelimits", "MeshFaultInjection": "meshfaultinjections", "MeshAccessLog": "meshaccesslogs",
		"MeshTrace": "meshtraces", "MeshMetric": "meshmetrics",
	}
	if got := policyKinds(); len(got) != len(want) {
		t.Errorf("policy kinds %v, want the %d of %v", got, len(want), want)
	}
	for name, plural := range want {
		for _, s := range []string{name, plural, strings.ToLower(name)} {
			k, ok := LookupKind(s)
			if !ok || k.Name != name || k.Plural != plural || k.Scope != ScopeMesh {
				t.Errorf("LookupKind(%q) = %+v, %v; want %s/%s mesh-scoped", s, k, ok, name, plural)
			}
		}
	}
}

func FuzzDecodePolicies(f *testing.F) {
	files, _ := filepath.Glob("testdata/policies/*/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, c := range slices.Concat(invalidPolicies, invalidPermissions) {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Decode(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, d := range docs {
			if v := d.Object.Validate(); !v.Empty() {
				t.Fatalf("decoded document %d does not validate: %v", d.Index, v)
			}
			out, err := Marshal(d.Object)
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := DecodeOne(out)
			if err != nil {
				t.Fatalf("the marshalled form does not decode: %v\n%s", err, out)
			}
			if out2, _ := Marshal(again); !bytes.Equal(out, out2) {
				t.Fatalf("round trip changed the resource:\n%s\n%s", out, out2)
			}
			if p, ok := d.Object.(Policy); ok {
				p.Entries()
				p.TopTargetRef()
			}
		}
	})
}
