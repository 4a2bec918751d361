package gui

import (
	"testing"
	"time"
)

func TestWindowCountsTheLastHour(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var w window
	w.observe(start, map[string]float64{})
	steps := []struct {
		after time.Duration
		total float64
		want  float64
		since time.Duration
	}{
		{10 * time.Minute, 5, 5, 0},                 // younger than an hour: since start
		{59 * time.Minute, 7, 7, 0},                 // still the start sample
		{70 * time.Minute, 9, 4, 10 * time.Minute},  // baseline: the sample at 10 min (5)
		{200 * time.Minute, 9, 0, 70 * time.Minute}, // nothing new for over an hour
	}
	for _, s := range steps {
		delta, since := w.observe(start.Add(s.after), map[string]float64{"x": s.total})
		if delta["x"] != s.want || !since.Equal(start.Add(s.since)) {
			t.Fatalf("at +%s: %v since %s, want %v since +%s", s.after, delta["x"], since, s.want, s.since)
		}
	}
}
