package main

import (
	"fmt"
	"math"
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
	for _, engine := range []string{"compiler", "interpreter"} {
		for _, phase := range []string{"headers", "lifecycle"} {
			empty := w(engine, "empty", phase)
			out10 := w(engine, "filter-outbound/routes=10", phase)
			target, max := "", none
			if engine == "compiler" && phase == "headers" {
				target, max = "<= 3", 3
			}
			add(fmt.Sprintf("%s %s: filter outbound ÷ empty", engine, phase), out10, empty, "ns/op", max, target)
			add(fmt.Sprintf("%s %s: filter inbound ÷ empty", engine, phase), w(engine, "filter-inbound", phase), empty, "ns/op", none, "")
			add(fmt.Sprintf("%s %s: oneheader ÷ empty", engine, phase), w(engine, "oneheader", phase), empty, "ns/op", none, "")
			target, max = "", none
			if engine == "compiler" && phase == "headers" {
				target, max = "<= 1", 1
			}
			add(fmt.Sprintf("%s %s: filter outbound ÷ SDK http_headers", engine, phase), out10, w(engine, "http_headers", phase), "ns/op", max, target)
		}
	}
	for _, n := range []string{"10", "1000", "10000"} {
		add("wasm ÷ native: outbound, "+n+" routes", w("compiler", "filter-outbound/routes="+n, "headers"),
			"BenchmarkOutbound/routes="+n+"/vip", "ns/op", none, "")
	}
	add("wasm ÷ native: inbound mTLS allow", w("compiler", "filter-inbound", "headers"), "BenchmarkInbound/mtls-allow", "ns/op", none, "")
	flat := "<= 1.5 (flat)"
	add("flat: wasm outbound 10,000 ÷ 10 routes", w("compiler", "filter-outbound/routes=10000", "headers"),
		w("compiler", "filter-outbound/routes=10", "headers"), "ns/op", 1.5, flat)
	add("flat: wasm outbound 1,000 ÷ 10 routes", w("compiler", "filter-outbound/routes=1000", "headers"),
		w("compiler", "filter-outbound/routes=10", "headers"), "ns/op", 1.5, flat)
	add("flat: native outbound 10,000 ÷ 10 routes", "BenchmarkOutbound/routes=10000/vip", "BenchmarkOutbound/routes=10/vip", "ns/op", 1.5, flat)
	if r, ok := idx["BenchmarkOutbound/routes=10/vip"]; ok {
		met := r.Metrics["allocs/op"] == 0
		out = append(out, ratio{Name: "native outbound lookup allocs/op", Num: r.Name, Unit: "allocs/op",
			Value: r.Metrics["allocs/op"], Target: "0", Met: &met})
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
