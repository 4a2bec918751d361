package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/ecsmesh/ecsmesh/bench/artifact"
)

// ratio is one quotient of two benchmarks of the same run.
type ratio struct {
	Name   string  `json:"name"`
	Num    string  `json:"numerator"`
	Den    string  `json:"denominator"`
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// baselineRevision names the baseline rows' filter (artifact.BaselineRevision).
const baselineRevision = artifact.BaselineRevision

// maxSoakGrowth is the soak's target: the guests' linear memory grows by at
// most 1 MiB after the warm-up.
const maxSoakGrowth = 1 << 20

// ratios computes the report's ratios from whatever results exist.
func ratios(results []result) []ratio {
	idx := map[string]result{}
	for _, r := range results {
		idx[r.Name] = r
	}
	var out []ratio
	add := func(name, num, den, unit string, max float64, target string) {
		n, ok1 := idx[num]
		d, ok2 := idx[den]
		if !ok1 || !ok2 || d.Metrics[unit] == 0 {
			return
		}
		r := ratio{Name: name, Num: num, Den: den, Unit: unit, Value: n.Metrics[unit] / d.Metrics[unit], Target: target}
		if !math.IsNaN(max) {
			met := r.Value <= max
			r.Met = &met
		}
		out = append(out, r)
	}
	none := math.NaN()
	w := func(engine, plugin, phase string) string {
		return fmt.Sprintf("BenchmarkWasm/engine=%s/plugin=%s/phase=%s", engine, plugin, phase)
	}
	for _, p := range []struct{ pair, name, target string }{
		{"outbound÷floor", "compiler headers: filter outbound ÷ floor (paired)", "<= 1.3"},
		{"inbound÷floor", "compiler headers: filter inbound ÷ floor (paired)", "<= 1.3"},
		{"outbound÷baseline", "compiler headers: filter outbound ÷ baseline " + baselineRevision + " (paired)", "<= 0.5"},
		{"inbound÷baseline", "compiler headers: filter inbound ÷ baseline " + baselineRevision + " (paired)", "<= 0.5"},
	} {
		r, ok := idx["BenchmarkPaired/pair="+p.pair+"/phase=headers"]
		if !ok {
			continue
		}
		limit := 1.3
		if strings.HasSuffix(p.target, "0.5") {
			limit = 0.5
		}
		met := r.Metrics["ratio"] <= limit
		out = append(out, ratio{Name: p.name, Num: r.Name, Unit: "ratio", Value: r.Metrics["ratio"], Target: p.target, Met: &met})
	}
	for _, engine := range []string{"compiler", "interpreter"} {
		for _, phase := range []string{"headers", "lifecycle"} {
			out10, in := w(engine, "filter-outbound/routes=10", phase), w(engine, "filter-inbound", phase)
			// The targets are read from BenchmarkPaired (below), which runs
			// both plugins of a ratio under the same load; these quotients
			// of rows run apart are shown for reference.
			add(fmt.Sprintf("%s %s: filter outbound ÷ floor (separate rows)", engine, phase), out10, w(engine, "floor-outbound", phase), "ns/op", none, "")
			add(fmt.Sprintf("%s %s: filter inbound ÷ floor (separate rows)", engine, phase), in, w(engine, "floor-inbound", phase), "ns/op", none, "")
			add(fmt.Sprintf("%s %s: filter outbound ÷ baseline %s (separate rows)", engine, phase, baselineRevision), out10,
				w(engine, "baseline-outbound/routes=10", phase), "ns/op", none, "")
			add(fmt.Sprintf("%s %s: filter inbound ÷ baseline %s (separate rows)", engine, phase, baselineRevision), in,
				w(engine, "baseline-inbound", phase), "ns/op", none, "")
			empty := w(engine, "empty", phase)
			add(fmt.Sprintf("%s %s: filter outbound ÷ empty", engine, phase), out10, empty, "ns/op", none, "")
			add(fmt.Sprintf("%s %s: filter inbound ÷ empty", engine, phase), in, empty, "ns/op", none, "")
			add(fmt.Sprintf("%s %s: floor outbound ÷ empty", engine, phase), w(engine, "floor-outbound", phase), empty, "ns/op", none, "")
			add(fmt.Sprintf("%s %s: floor inbound ÷ empty", engine, phase), w(engine, "floor-inbound", phase), empty, "ns/op", none, "")
			add(fmt.Sprintf("%s %s: oneheader ÷ empty", engine, phase), w(engine, "oneheader", phase), empty, "ns/op", none, "")
			add(fmt.Sprintf("%s %s: filter outbound ÷ SDK http_headers", engine, phase), out10, w(engine, "http_headers", phase), "ns/op", none, "")
		}
	}
	for _, n := range []string{"10", "1000", "10000"} {
		add("wasm ÷ native: outbound, "+n+" routes", w("compiler", "filter-outbound/routes="+n, "headers"),
			"BenchmarkOutbound/routes="+n+"/vip", "ns/op", none, "")
	}
	add("wasm ÷ native: inbound mTLS allow", w("compiler", "filter-inbound", "headers"), "BenchmarkInbound/mtls-allow", "ns/op", none, "")
	flat := "<= 1.5 (flat)"
	add("flat: wasm outbound 10,000 ÷ 10 routes (separate rows)", w("compiler", "filter-outbound/routes=10000", "headers"),
		w("compiler", "filter-outbound/routes=10", "headers"), "ns/op", none, "")
	add("flat: wasm outbound 1,000 ÷ 10 routes (separate rows)", w("compiler", "filter-outbound/routes=1000", "headers"),
		w("compiler", "filter-outbound/routes=10", "headers"), "ns/op", none, "")
	add("flat: native outbound 10,000 ÷ 10 routes (separate rows)", "BenchmarkOutbound/routes=10000/vip", "BenchmarkOutbound/routes=10/vip", "ns/op", none, "")
	if r, ok := idx["BenchmarkFlat"]; ok {
		met := r.Metrics["ratio"] <= 1.5
		out = append(out, ratio{Name: "flat: native outbound 10,000 ÷ 10 routes (paired)", Num: r.Name, Unit: "ratio",
			Value: r.Metrics["ratio"], Target: flat, Met: &met})
	}
	for _, a := range []struct{ name, bench, target string }{
		{"native outbound decision allocs/op (10 routes)", "BenchmarkOutbound/routes=10/vip", "0"},
		{"native outbound decision allocs/op (10,000 routes)", "BenchmarkOutbound/routes=10000/vip", "0"},
		{"native inbound mTLS decision allocs/op", "BenchmarkInbound/mtls-allow", "0"},
		{"Go filter adapter outbound allocs/op", "BenchmarkDecodeHeaders/outbound", ""},
		{"Go filter adapter inbound mTLS allocs/op", "BenchmarkDecodeHeaders/inbound-mtls", ""},
		{"Go filter adapter inbound JWT-SVID allocs/op", "BenchmarkDecodeHeaders/inbound-jwt", ""},
	} {
		r, ok := idx[a.bench]
		if !ok {
			continue
		}
		rt := ratio{Name: a.name, Num: r.Name, Unit: "allocs/op", Value: r.Metrics["allocs/op"], Target: a.target}
		if a.target != "" {
			met := rt.Value == 0
			rt.Met = &met
		}
		out = append(out, rt)
	}
	if r, ok := idx["BenchmarkSoak"]; ok {
		met := r.Metrics["growth-bytes"] <= maxSoakGrowth
		out = append(out, ratio{Name: fmt.Sprintf("soak: guest linear memory growth after warm-up (%.0f requests)", r.Metrics["requests"]),
			Num: r.Name, Unit: "growth-bytes", Value: r.Metrics["growth-bytes"], Target: "<= 1 MiB", Met: &met})
	}
	add("xDS initial sync per sidecar: 10 reachable services ÷ all 1,000", "BenchmarkInitialSync/reachable=10", "BenchmarkInitialSync/reachable=all",
		"KiB-initial-sync/sidecar", 0.05, "<= 0.05")
	add("xDS build-all: with traffic policies ÷ without", "BenchmarkSnapshots10kPolicies", "BenchmarkSnapshots10k", "ms/build-all", none, "")
	out = append(out, ceiling(idx, "xDS build-all with policies, 10,000 dataplanes (ms)", "BenchmarkSnapshots10kPolicies", "ms/build-all", 3000)...)
	out = append(out, ceiling(idx, "CP heap per dataplane with policies (KiB)", "BenchmarkSnapshots10kPolicies", "KiB-heap/dataplane", 8)...)
	return out
}

// ceiling is an absolute target: the metric of one benchmark at most max.
func ceiling(idx map[string]result, name, bench, unit string, max float64) []ratio {
	r, ok := idx[bench]
	if !ok || r.Metrics[unit] == 0 {
		return nil
	}
	met := r.Metrics[unit] <= max
	return []ratio{{Name: name, Num: bench, Unit: unit, Value: r.Metrics[unit], Target: fmt.Sprintf("<= %g", max), Met: &met}}
}
