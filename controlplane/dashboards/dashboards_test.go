package dashboards

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// registered scans the control plane's code for the names of the metrics
// it registers (prometheus.*Opts{Name: "..."}, prometheus.NewDesc and the
// dns package's gauge helper).
func registered(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(|gauge\()"(ecsmesh_[a-z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the code: the scan is broken", len(names))
	}
	return names
}

var metricRE = regexp.MustCompile(`\becsmesh_[a-z0-9_]+`)

// TestDashboardsQueryRegisteredMetrics fails on a panel query naming a
// metric no code registers (a typo, or a metric renamed or removed).
func TestDashboardsQueryRegisteredMetrics(t *testing.T) {
	names := registered(t)
	files, err := fs.Glob(FS, "*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	for _, f := range files {
		b, _ := FS.ReadFile(f)
		var d struct {
			Title  string `json:"title"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil || d.Title == "" || len(d.Panels) == 0 {
			t.Fatalf("%s is not a dashboard: %v", f, err)
		}
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, tg := range p.Targets {
				found := metricRE.FindAllString(tg.Expr, -1)
				if len(found) == 0 {
					t.Errorf("%s: panel %q queries no ecsmesh metric: %s", f, p.Title, tg.Expr)
				}
				for _, m := range found {
					base := m
					for _, suf := range []string{"_bucket", "_sum", "_count"} {
						if strings.HasSuffix(m, suf) && names[strings.TrimSuffix(m, suf)] {
							base = strings.TrimSuffix(m, suf)
						}
					}
					if !names[base] {
						t.Errorf("%s: panel %q queries %s, which no code registers", f, p.Title, m)
					}
				}
			}
		}
	}
}
