// Package plugins holds the baseline proxy-wasm plugins (empty, oneheader)
// and the benchmarks that run them, the SDK's own examples/http_headers and
// the ecsmesh filter side by side in proxyhost, in one process, so that
// ratios between them are measured on the same machine at the same time.
//
// Set ECSMESH_BENCH_QUICK=1 for the short CI variant (fewer route tables),
// ECSMESH_FILTER_WASM to use a prebuilt filter, ECSMESH_SDK_EXAMPLES to point
// at a checkout of the SDK's examples directory.
package plugins
