package gui

import (
	"context"
	"sync"
	"time"
)

// Window is how far back the overview counts refusals.
const Window = time.Hour

// sampleEvery paces Run's samples of the refusal counters.
const sampleEvery = time.Minute

// window remembers counter samples so that the overview can tell how much
// each counter grew in the last hour (Prometheus counters only know their
// total since the process started).
type window struct {
	mu      sync.Mutex
	samples []sample // oldest first
}

type sample struct {
	at     time.Time
	values map[string]float64
}

// observe records values at now and returns how much each grew since the
// baseline: the newest sample at least Window old, else the oldest one
// (the counters' start: New records zeros). since is the baseline's time.
func (w *window) observe(now time.Time, values map[string]float64) (delta map[string]float64, since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.samples); n == 0 || now.Sub(w.samples[n-1].at) >= sampleEvery/2 {
		w.samples = append(w.samples, sample{at: now, values: values})
	}
	base := 0
	for i, s := range w.samples {
		if now.Sub(s.at) >= Window {
			base = i
		}
	}
	w.samples = w.samples[base:]
	b := w.samples[0]
	delta = make(map[string]float64, len(values))
	for k, v := range values {
		if d := v - b.values[k]; d > 0 {
			delta[k] = d
		}
	}
	return delta, b.at
}

// Run samples the refusal counters every minute until ctx ends, so that
// the overview's last-hour counts hold between page views.
func (g *GUI) Run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			refusals, _ := g.counters()
			g.window.observe(g.o.Now(), counterValues(refusals))
		}
	}
}

func counterValues(cs []counter) map[string]float64 {
	m := make(map[string]float64, len(cs))
	for _, c := range cs {
		m[c.Name+"{"+c.Labels+"}"] = c.Value
	}
	return m
}
