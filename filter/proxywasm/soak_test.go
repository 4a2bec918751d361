package proxywasm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/ecsmesh/ecsmesh/bench/proxyhost"
	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
)

// MaxSoakGrowth is the most the guests' linear memory may grow between the
// end of the warm-up and the end of a soak.
const maxSoakGrowth = 1 << 20

// soakResult is what one soak measured.
type soakResult struct {
	requests          int
	warmOut, warmIn   uint64 // linear memory of each VM after the warm-up
	endOut, endIn     uint64 // and at the end
	outbound, allowed uint64 // requests of each outcome, as counted by the test
	denied            uint64
}

func (r soakResult) growth() int64 {
	return int64(r.endOut+r.endIn) - int64(r.warmOut+r.warmIn)
}

// soakOutboundConfig has 100 routes whose clusters are named after the
// configuration generation; even routes attach a token.
func soakOutboundConfig(k *filtertest.Keys, gen int) string {
	routes := make([]map[string]any, 100)
	for i := range routes {
		routes[i] = map[string]any{"vip": fmt.Sprintf("127.1.%d.%d:8080", i/250, i%250+1),
			"hosts": []string{fmt.Sprintf("svc-%d.mesh.local", i)}, "cluster": soakCluster(gen, i),
			"attachToken": i%2 == 0}
	}
	b, _ := json.Marshal(map[string]any{"mode": "outbound", "routes": routes,
		"identity": map[string]any{"spiffeId": filtertest.Web, "token": k.SelfToken(filtertest.Valid), "tokenExpiresAt": filtertest.Valid}})
	return string(b)
}

func soakCluster(gen, i int) string { return fmt.Sprintf("g%d-svc-%d", gen%2, i) }

// soakInboundConfig allows the trust domain but Evil; odd generations also
// deny Batch, so that a request shows which configuration decided it.
func soakInboundConfig(k *filtertest.Keys, gen int) string {
	var cfg map[string]any
	_ = json.Unmarshal([]byte(k.InboundConfig()), &cfg)
	if gen%2 == 1 {
		in := cfg["inbound"].(map[string]any)
		in["permissions"] = append(in["permissions"].([]any),
			map[string]any{"type": "Exact", "value": filtertest.Batch, "action": "Deny"})
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}

// soak sends n requests through the .wasm in proxyhost, a whole request
// lifecycle each: half outbound (100 routes, the VIPs in turn), a quarter
// inbound with an mTLS peer (API and Batch allowed, Evil denied; Batch
// denied in odd configuration generations), a quarter inbound with a
// JWT-SVID and no certificate (256 tokens in turn, which the filter's cache
// holds, and one new token in 500, which it must verify). Both
// configurations are replaced every n/10 requests. Every outcome is
// checked. The memory after the warm-up is read after the first 3n/10
// requests and the third update (the Go heap's goal settles over the
// first few configurations).
func soak(tb testing.TB, n int) soakResult {
	ctx := context.Background()
	keys := filtertest.NewKeys()
	rt, err := proxyhost.NewRuntime(ctx, proxyhost.Options{CacheDir: proxyhost.DefaultCacheDir()})
	if err != nil {
		tb.Fatal(err)
	}
	defer rt.Close(ctx)
	plugin, err := rt.Compile(ctx, wasmBinary)
	if err != nil {
		tb.Fatal(err)
	}
	quiet := proxyhost.LogCritical
	out, err := plugin.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(soakOutboundConfig(keys, 0)), LogLevel: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	in, err := plugin.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(soakInboundConfig(keys, 0)), LogLevel: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	tokens := make([]string, 256)
	for i := range tokens {
		tokens[i] = keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid-int64(i)))
	}
	headers := [][2]string{{":authority", ""}, {":path", "/v1/items"}, {":method", "GET"},
		{":scheme", "http"}, {"user-agent", "soak/1"}, {"x-request-id", "5b1b7a51-3f3c-4f0e-9d1e-7c6e0c1e2a3b"}, {"", ""}}
	res := soakResult{requests: n}
	segment, gen, fresh := max(n/10, 1), 0, int64(0)
	for i := range n {
		if i > 0 && i%segment == 0 {
			gen++
			if err := out.Configure([]byte(soakOutboundConfig(keys, gen))); err != nil {
				tb.Fatalf("request %d: outbound update: %v", i, err)
			}
			if err := in.Configure([]byte(soakInboundConfig(keys, gen))); err != nil {
				tb.Fatalf("request %d: inbound update: %v", i, err)
			}
			if i == 3*segment {
				res.warmOut, res.warmIn = out.MemoryBytes(), in.MemoryBytes()
			}
		}
		var vm *proxyhost.VM
		var wantStatus uint32
		var wantName, wantValue string
		h := headers[:6]
		switch i % 4 {
		case 0, 1:
			vm = out
			r := (i / 2) % 100
			vm.SetProperty("destination.address", fmt.Appendf(nil, "127.1.%d.%d:8080", r/250, r%250+1))
			wantName, wantValue = "x-ecsmesh-cluster", soakCluster(gen, r)
			res.outbound++
		case 2:
			vm = in
			peer := filtertest.API
			switch (i / 4) % 8 {
			case 3:
				peer, wantStatus = filtertest.Evil, 403
			case 5:
				peer = filtertest.Batch
				if gen%2 == 1 {
					wantStatus = 403
				}
			}
			vm.SetProperty("connection.uri_san_peer_certificate", []byte(peer))
			wantName, wantValue = "x-ecsmesh-peer-id", peer
		case 3:
			vm = in
			vm.SetProperty("connection.uri_san_peer_certificate", nil)
			tok := tokens[(i/4)%len(tokens)]
			if (i/4)%500 == 499 {
				fresh++
				tok = keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid-1000-fresh))
			}
			h = append(h, [2]string{"x-ecsmesh-identity", tok})
			wantName, wantValue = "x-ecsmesh-peer-id", filtertest.API
		}
		hc, err := vm.NewHTTPContext()
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := hc.OnRequestHeaders(h, true); err != nil {
			tb.Fatalf("request %d: %v", i, err)
		}
		if lr := hc.LocalResponse(); wantStatus != 0 {
			if lr == nil || lr.StatusCode != wantStatus {
				tb.Fatalf("request %d (generation %d): local reply %+v, want %d", i, gen, lr, wantStatus)
			}
			res.denied++
		} else if v, _ := hc.RequestHeader(wantName); lr != nil || v != wantValue {
			tb.Fatalf("request %d (generation %d): local reply %+v, %s %q, want %q", i, gen, lr, wantName, v, wantValue)
		} else if vm == in {
			res.allowed++
		}
		if err := hc.Done(); err != nil {
			tb.Fatal(err)
		}
	}
	if res.warmOut == 0 {
		res.warmOut, res.warmIn = out.MemoryBytes(), in.MemoryBytes()
	}
	res.endOut, res.endIn = out.MemoryBytes(), in.MemoryBytes()
	// Every request was counted: the pending increments reach the host on
	// a tick.
	for _, vm := range []*proxyhost.VM{out, in} {
		if err := vm.Tick(); err != nil {
			tb.Fatal(err)
		}
	}
	for _, c := range []struct {
		vm   *proxyhost.VM
		name string
		want uint64
	}{{out, "ecsmesh_filter_routed", res.outbound}, {in, "ecsmesh_filter_allowed", res.allowed},
		{in, "ecsmesh_filter_denied", res.denied}} {
		if got, _ := c.vm.Metric(c.name); got != c.want {
			tb.Errorf("counter %s = %d, want %d", c.name, got, c.want)
		}
	}
	if n := out.LogCount(proxyhost.LogError) + in.LogCount(proxyhost.LogError); n > 0 {
		tb.Errorf("%d error logs", n)
	}
	return res
}

// TestSoakShort is a short soak in every test run: outcomes, counters and
// bounded memory over 20,000 requests.
func TestSoakShort(t *testing.T) {
	r := soak(t, 20_000)
	if g := r.growth(); g > maxSoakGrowth {
		t.Errorf("guest linear memory grew by %d bytes after the warm-up (%d → %d), want ≤ %d",
			g, r.warmOut+r.warmIn, r.endOut+r.endIn, maxSoakGrowth)
	}
}

// BenchmarkSoak is the soak of make bench: 1,000,000 requests (100,000 with
// ECSMESH_BENCH_QUICK), configurations replaced every tenth. Run it with
// -benchtime 1x. It reports the guests' linear memory after the warm-up
// and at the end, the growth (which must stay ≤ 1 MiB) and the memory of
// each VM.
func BenchmarkSoak(b *testing.B) {
	n := 1_000_000
	if os.Getenv("ECSMESH_BENCH_QUICK") != "" {
		n = 100_000
	}
	var r soakResult
	for range b.N {
		r = soak(b, n)
	}
	b.ReportMetric(float64(r.requests), "requests")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(r.requests)/float64(b.N), "ns/request")
	b.ReportMetric(float64(r.warmOut+r.warmIn), "warm-wasm-bytes")
	b.ReportMetric(float64(r.endOut+r.endIn), "end-wasm-bytes")
	b.ReportMetric(float64(r.growth()), "growth-bytes")
	b.ReportMetric(float64(r.warmOut), "outbound-warm-bytes")
	b.ReportMetric(float64(r.endOut), "outbound-vm-bytes")
	b.ReportMetric(float64(r.warmIn), "inbound-warm-bytes")
	b.ReportMetric(float64(r.endIn), "inbound-vm-bytes")
	if g := r.growth(); g > maxSoakGrowth {
		b.Errorf("guest linear memory grew by %d bytes after the warm-up, want ≤ %d", g, maxSoakGrowth)
	}
}
