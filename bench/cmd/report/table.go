package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// printTable prints the report: a header, one section per suite, the ratios.
func printTable(w io.Writer, rep *report) {
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "ecsmesh benchmarks (%s, count=%d, medians)  commit %s\n", mode, rep.Count, rep.Commit)
	fmt.Fprintf(w, "cpu: %s (%d CPUs, %s/%s)  %s  wazero %s  proxy-wasm-go-sdk %s\n",
		rep.CPU, rep.CPUs, rep.GOOS, rep.GOARCH, rep.Go, rep.Wazero, rep.SDK)
	for _, s := range rep.Suites {
		fmt.Fprintf(w, "\n== %s (%s): %s", s.Name, s.Package, s.Status)
		if s.Reason != "" {
			fmt.Fprintf(w, " — %s", s.Reason)
		}
		fmt.Fprintln(w)
		for _, sk := range s.Skipped {
			fmt.Fprintf(w, "   skipped %s\n", sk)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "benchmark\t time/op\t B/op\t allocs/op\t other\t")
		for _, r := range rep.Results {
			if r.Suite != s.Name {
				continue
			}
			fmt.Fprintf(tw, "%s\t %s\t %s\t %s\t %s\t\n", strings.TrimPrefix(r.Name, "Benchmark"),
				duration(r.Metrics["ns/op"]), num(r.Metrics, "B/op"), num(r.Metrics, "allocs/op"), others(r.Metrics))
		}
		if s.Status == "ok" {
			tw.Flush()
		}
	}
	if len(rep.Ratios) == 0 {
		return
	}
	fmt.Fprintln(w, "\n== ratios (same run)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ratio\tvalue\ttarget\t")
	for _, r := range rep.Ratios {
		met := ""
		if r.Met != nil {
			met = "  met"
			if !*r.Met {
				met = "  NOT met"
			}
		}
		v := fmt.Sprintf("%.2f×", r.Value)
		switch {
		case r.Den == "" && r.Unit != "allocs/op" && r.Unit != "growth-bytes" && r.Unit != "ratio":
			// An absolute ceiling (ceiling in ratios.go), not a ratio.
			v = fmt.Sprintf("%.4g %s", r.Value, r.Unit)
		}
		switch r.Unit {
		case "allocs/op":
			v = fmt.Sprintf("%g", r.Value)
		case "growth-bytes":
			v = fmt.Sprintf("%.0f KiB", r.Value/1024)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t\n", r.Name, v, r.Target, met)
	}
	tw.Flush()
}

func duration(ns float64) string {
	switch {
	case ns == 0:
		return "-"
	case ns < 1e3:
		return fmt.Sprintf("%.1f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func num(m map[string]float64, unit string) string {
	v, ok := m[unit]
	if !ok {
		return "-"
	}
	return short(v)
}

func short(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1e6:
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// others formats the custom metrics (b.ReportMetric), sorted by unit.
func others(m map[string]float64) string {
	var units []string
	for u := range m {
		switch u {
		case "ns/op", "B/op", "allocs/op":
		default:
			units = append(units, u)
		}
	}
	sort.Strings(units)
	parts := make([]string, 0, len(units))
	for _, u := range units {
		parts = append(parts, short(m[u])+" "+u)
	}
	return strings.Join(parts, ", ")
}
