package resource

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestDecodeGolden decodes every testdata/decode/*.yaml and compares the
// resources or violations with the .golden file next to it.
func TestDecodeGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/decode/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := renderDecode(t, in)
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
				t.Errorf("decode %s:\n--- got\n%s\n--- want\n%s", f, got, want)
			}
		})
	}
}

func renderDecode(t *testing.T, in []byte) string {
	t.Helper()
	docs, err := Decode(in)
	var b strings.Builder
	if err != nil {
		var ferr *FileError
		if !errors.As(err, &ferr) {
			t.Fatalf("error is %T, want *FileError", err)
		}
		b.WriteString("INVALID\n")
		b.WriteString(ferr.Error())
		b.WriteString("\n")
		return b.String()
	}
	for _, d := range docs {
		out, err := Marshal(d.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(string(out))
		b.WriteString("\n")
		for _, w := range d.Warnings {
			b.WriteString("warning: " + w + "\n")
		}
	}
	return b.String()
}

func TestDecodeJSONForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"object", `{"type":"Mesh","name":"a"}`, 1},
		{"array", `[{"type":"Mesh","name":"a"},{"type":"Mesh","name":"b"}]`, 2},
		{"kuma list", `{"items":[{"type":"Mesh","name":"a"}],"total":1}`, 1},
		{"yaml with leading separator", "---\ntype: Mesh\nname: a\n---\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != tt.want {
				t.Fatalf("got %d documents, want %d", len(docs), tt.want)
			}
		})
	}
}

func TestDecodeRejectsEmptyAndDuplicates(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n---\n", "type: Mesh\nname: a\n---\ntype: Mesh\nname: a\n"} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) succeeded, want an error", in)
		}
	}
}

func TestSPIFFEIDDefaults(t *testing.T) {
	mesh := &Mesh{Meta: Meta{Type: KindMesh, Name: "default"}}
	dp := &Dataplane{Meta: Meta{Type: KindDataplane, Mesh: "default", Name: "redis-1"},
		Networking: Networking{Address: "10.0.0.1", Inbound: []Inbound{{Port: 1, Tags: map[string]string{TagService: "redis"}}}}}
	id, err := SPIFFEID(mesh, nil, dp)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id.String(), "spiffe://default.mesh.local/workload/redis"; got != want {
		t.Errorf("SPIFFE ID = %s, want %s (service fallback)", got, want)
	}
	dp.Labels = map[string]string{TagWorkload: "cache", "team": "a"}
	mi := &MeshIdentity{Meta: Meta{Mesh: "default"}, Spec: MeshIdentitySpec{SpiffeID: SpiffeIDTemplate{
		TrustDomain: "corp.example", Path: `/team/{{ label "team" }}/{{ .Service }}`}}}
	if id, err = SPIFFEID(mesh, mi, dp); err != nil || id.String() != "spiffe://corp.example/team/a/redis" {
		t.Errorf("SPIFFE ID = %v, %v", id, err)
	}
	mi.Spec.SpiffeID.Path = `/{{ label "missing" }}`
	if _, err := SPIFFEID(mesh, mi, dp); err == nil {
		t.Error("a template naming a missing label must fail")
	}
}

func TestSelectIdentityMostSpecific(t *testing.T) {
	dp := &Dataplane{Meta: Meta{Mesh: "m", Labels: map[string]string{"a": "1", "b": "2"}}}
	all := &MeshIdentity{Meta: Meta{Mesh: "m", Name: "all"}}
	one := &MeshIdentity{Meta: Meta{Mesh: "m", Name: "z-one"}, Spec: MeshIdentitySpec{Selector: MeshIdentitySelector{Dataplane: &LabelSelector{MatchLabels: map[string]string{"a": "1"}}}}}
	other := &MeshIdentity{Meta: Meta{Mesh: "other", Name: "a"}}
	if got := SelectIdentity([]*MeshIdentity{all, one, other}, dp); got != one {
		t.Errorf("selected %v, want the most specific", got)
	}
	if got := SelectIdentity([]*MeshIdentity{other}, dp); got != nil {
		t.Errorf("selected %v from another mesh", got)
	}
}

func TestLookupKind(t *testing.T) {
	for _, s := range []string{"dataplane", "Dataplanes", "MESHTRAFFICPERMISSION", "meshidentities", "onboardingpolicies", " mesh "} {
		if _, ok := LookupKind(s); !ok {
			t.Errorf("LookupKind(%q) failed", s)
		}
	}
	if _, ok := LookupKind("gateway"); ok {
		t.Error("unknown kind found")
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/decode/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"type":"Dataplane","networking":{"inbound":[{"port":-1}]}}`))
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
			b, err := Marshal(d.Object)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Unmarshal(d.Object.GetMeta().Type, b); err != nil {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
