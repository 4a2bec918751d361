package layout

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// citationWord is the name of the product specification the project was
// built from. That document is not in the repository, so no comment,
// message or page may send a reader to it: docs/design.md and
// docs/reference.md say the same things in the project's own words. The
// word is assembled here so that this file does not cite it itself.
var citationWord = "S" + "PEC"

// citationRE matches the word as a whole, upper-case word ("<word> §3.2",
// "see <word>", "<word>.md"), not "spec:" fields or Go's .Spec.
var citationRE = regexp.MustCompile(`\b` + citationWord + `\b`)

// citations returns every line of text that cites the specification.
func citations(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if citationRE.MatchString(line) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func TestCitationsMatcher(t *testing.T) {
	for _, tt := range []struct {
		text string
		want bool
	}{
		{"// MaxBodyBytes caps request bodies (" + citationWord + " §3: 1 MiB).", true},
		{"see " + citationWord + ".md", true},
		{`"unknown field; check its spelling against ` + citationWord + ` §2"`, true},
		{"# " + citationWord, true},
		{"Spec MeshIdentitySpec `json:\"spec\"`", false},
		{"spec: {targetRef: {kind: Mesh}}", false},
		{"// parseAud accepts a string or an array of strings (RFC 7519 §4.1.3).", false},
		{"see docs/reference.md#resources", false},
		{citationWord + "IFIC", false},
	} {
		if got := len(citations(tt.text)) > 0; got != tt.want {
			t.Errorf("citations(%q) found = %v, want %v", tt.text, got, tt.want)
		}
	}
}

// TestNoSpecificationCitations walks the module: no Go file (outside .git
// and build/) and no Markdown page may cite the specification.
func TestNoSpecificationCitations(t *testing.T) {
	const root = "../.."
	checked := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if d.Name() == ".git" || rel == "build" {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".go" && ext != ".md" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked[ext]++
		for _, c := range citations(string(data)) {
			t.Errorf("%s cites the product specification, which is not in the repository; describe it in the project's own words or link docs/design.md or docs/reference.md instead:\n\t%s", filepath.ToSlash(rel), c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The walk must have seen the tree, or the test proves nothing.
	if checked[".go"] < 100 || checked[".md"] < 3 {
		t.Fatalf("walked too little of the module: %d Go files, %d Markdown pages", checked[".go"], checked[".md"])
	}
	for _, page := range []string{"README.md", "docs/design.md", "docs/reference.md"} {
		if _, err := os.Stat(filepath.Join(root, page)); err != nil {
			t.Errorf("%s: %v", page, err)
		}
	}
}
