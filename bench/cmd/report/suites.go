package main

// suite is one go test -bench invocation gathered into the report.
type suite struct {
	// Name is the heading in the table.
	Name string `json:"name"`
	// Package is the package pattern, relative to the module root.
	Package string `json:"package"`
	// Bench and QuickBench are the -bench patterns ("" = not run in that mode).
	Bench      string `json:"-"`
	QuickBench string `json:"-"`
	// Benchtime and QuickBenchtime are the -benchtime values.
	Benchtime      string `json:"-"`
	QuickBenchtime string `json:"-"`
	// Status is ok, skipped or failed once run; Reason says why when not ok.
	// Count, when not 0, replaces the run's -count (the soak runs once).
	Count  int    `json:"-"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Skipped lists the benchmarks that called b.Skip, with their reasons.
	Skipped []string `json:"skipped,omitempty"`
}

// suites are the benchmarks of the report. Control-plane suites belong to the
// packages' owners: a suite whose package or benchmarks do not exist yet is
// reported as skipped.
func suites() []suite {
	return []suite{
		{Name: "proxy-wasm plugins in proxyhost (per request)", Package: "./bench/plugins",
			Bench: "^Benchmark(Wasm|Paired)$", QuickBench: "^Benchmark(Wasm|Paired)$", Benchtime: "1s", QuickBenchtime: "50ms"},
		{Name: "module compile and VM instantiate", Package: "./bench/plugins",
			Bench: "^Benchmark(Compile|Instantiate)$", QuickBench: "^Benchmark(Compile|Instantiate)$",
			Benchtime: "3x", QuickBenchtime: "1x"},
		{Name: "native filter core (filter.Compiled.Decide)", Package: "./filter",
			Bench: "^Benchmark(Outbound|Inbound|Flat)$", QuickBench: "^Benchmark(Outbound|Inbound|Flat)$",
			Benchtime: "1s", QuickBenchtime: "20ms"},
		{Name: "Go filter adapter (filter/envoygo against its fake callbacks, per request)", Package: "./filter/envoygo",
			Bench: "^BenchmarkDecodeHeaders$", QuickBench: "^BenchmarkDecodeHeaders$", Benchtime: "1s", QuickBenchtime: "20ms"},
		{Name: "soak: the .wasm in proxyhost, 1,000,000 requests (100,000 quick), configurations replaced every tenth", Package: "./filter/proxywasm",
			Bench: "^BenchmarkSoak$", QuickBench: "^BenchmarkSoak$", Benchtime: "1x", QuickBenchtime: "1x", Count: 1},
		{Name: "CP: login verification (IAM)", Package: "./controlplane/auth",
			Bench: "^BenchmarkLogin", QuickBench: "^BenchmarkLoginVerify$", Benchtime: "1s", QuickBenchtime: "1x"},
		{Name: "CP: xDS snapshot generation and push", Package: "./controlplane/xds",
			Bench: "^Benchmark", QuickBench: "^Benchmark", Benchtime: "1s", QuickBenchtime: "1x"},
		{Name: "CP: Route53 convergence (API calls)", Package: "./controlplane/dns",
			Bench: "^BenchmarkConverge", QuickBench: "^BenchmarkConverge1000$", Benchtime: "1x", QuickBenchtime: "1x"},
		{Name: "CP: X.509 SVID issuance", Package: "./controlplane/ca",
			Bench: "^BenchmarkIssueX509SVID$", QuickBench: "^BenchmarkIssueX509SVID$", Benchtime: "1s", QuickBenchtime: "1x"},
	}
}
