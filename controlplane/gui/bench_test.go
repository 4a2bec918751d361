package gui

import (
	"io"
	"net/http/httptest"
	"testing"
)

// BenchmarkPages renders each page of a mesh with 1,000 services and
// 10,000 dataplanes (the lists cut at PageSize rows), from the store up.
// make bench reports ns/op; nothing here asserts a time.
func BenchmarkPages(b *testing.B) {
	st := world{meshes: []string{"default"}, services: 1000, dps: 10000, label: "team-a", policy: "timeouts"}.build(b)
	// Cold: a new GUI each time decodes all 10,000 Dataplane records (as
	// after a restart); the others reuse the decoded records whose store
	// version did not change.
	b.Run("overview-cold", func(b *testing.B) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			newGUI(b, st, "").ServeHTTP(rec, httptest.NewRequest("GET", "/gui/", nil))
			if rec.Code != 200 {
				b.Fatalf("overview: %d", rec.Code)
			}
		}
	})
	h := newGUI(b, st, "")
	for _, tc := range []struct{ name, path string }{
		{"overview", "/gui/"},
		{"services", "/gui/services"},
		{"dataplanes", "/gui/dataplanes"},
		{"dataplanes-sorted-page3", "/gui/dataplanes?sort=service&dir=desc&page=3"},
		{"dataplanes-search", "/gui/dataplanes?q=svc-0042"},
		{"dataplane", "/gui/dataplanes/default/dp-04242"},
		{"policies", "/gui/policies"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
				if rec.Code != 200 {
					b.Fatalf("%s: %d", tc.path, rec.Code)
				}
				_, _ = io.Copy(io.Discard, rec.Body)
			}
		})
	}
}
