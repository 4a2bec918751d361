package plugins_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/bench/proxyhost"
)

// subject is one plugin with its configuration and request.
type subject struct {
	name    string
	wasm    func() ([]byte, error)
	config  string
	props   map[string][]byte
	headers [][2]string
}

func requestHeaders(authority string) [][2]string {
	return [][2]string{{":authority", authority}, {":path", "/v1/items"}, {":method", "GET"},
		{":scheme", "http"}, {"user-agent", "bench/1"}, {"accept", "*/*"}, {"x-request-id", "5b1b7a51-3f3c-4f0e-9d1e-7c6e0c1e2a3b"}}
}

// routesConfig is an outbound configuration with n routes, every one with
// attachToken, and the VIP of its last route.
func routesConfig(n int) (string, string) {
	var b strings.Builder
	b.WriteString(`{"mode":"outbound","identity":{"spiffeId":"spiffe://default.mesh.local/workload/web",` +
		`"token":"e30.eyJleHAiOjQxMDI0NDQ4MDB9.AA","tokenExpiresAt":4102444800},"routes":[`)
	vip := ""
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		vip = fmt.Sprintf("127.%d.%d.%d:8080", 1+i/65536, i/256%256, i%256)
		fmt.Fprintf(&b, `{"vip":%q,"hosts":["svc-%d.mesh.local"],"cluster":"svc-%d","attachToken":true}`, vip, i, i)
	}
	b.WriteString(`]}`)
	return b.String(), vip
}

const inboundConfig = `{"mode":"inbound","identity":{"spiffeId":"spiffe://default.mesh.local/workload/web"},
 "inbound":{"service":"web","default":"Deny","permissions":[
   {"type":"Prefix","value":"spiffe://default.mesh.local/","action":"Allow"},
   {"type":"Exact","value":"spiffe://default.mesh.local/workload/evil","action":"Deny"}]}}`

func fixed(b []byte) func() ([]byte, error) { return func() ([]byte, error) { return b, nil } }

func routeCounts(engine proxyhost.Engine) []int {
	switch {
	case engine == proxyhost.Interpreter:
		return []int{10}
	case quick():
		return []int{10, 1000}
	}
	return []int{10, 1000, 10000}
}

func subjects(engine proxyhost.Engine) []subject {
	s := []subject{
		{name: "empty", wasm: fixed(bins.empty), headers: requestHeaders("svc.mesh.local")},
		{name: "oneheader", wasm: fixed(bins.oneheader), headers: requestHeaders("svc.mesh.local")},
		{name: "http_headers", wasm: func() ([]byte, error) { return bins.example, bins.exampleErr },
			config: `{"header":"x-from-config","value":"yes"}`, headers: requestHeaders("svc.mesh.local")},
	}
	cfg10, vip10 := routesConfig(10)
	outProps := map[string][]byte{"destination.address": []byte(vip10)}
	inProps := map[string][]byte{"connection.uri_san_peer_certificate": []byte("spiffe://default.mesh.local/workload/api")}
	s = append(s,
		subject{name: "floor-outbound", wasm: fixed(bins.floor), config: "outbound", props: outProps, headers: requestHeaders(vip10)},
		subject{name: "floor-inbound", wasm: fixed(bins.floor), config: "inbound", props: inProps, headers: requestHeaders("web.mesh.local")},
		subject{name: "baseline-outbound/routes=10", wasm: func() ([]byte, error) { return bins.baseline, bins.baselineErr },
			config: cfg10, props: outProps, headers: requestHeaders(vip10)},
		subject{name: "baseline-inbound", wasm: func() ([]byte, error) { return bins.baseline, bins.baselineErr },
			config: inboundConfig, props: inProps, headers: requestHeaders("web.mesh.local")},
	)
	for _, n := range routeCounts(engine) {
		cfg, vip := routesConfig(n)
		s = append(s, subject{name: fmt.Sprintf("filter-outbound/routes=%d", n), wasm: fixed(bins.filter), config: cfg,
			props: map[string][]byte{"destination.address": []byte(vip)}, headers: requestHeaders(vip)})
	}
	return append(s, subject{name: "filter-inbound", wasm: fixed(bins.filter), config: inboundConfig,
		props: inProps, headers: requestHeaders("web.mesh.local")})
}

func newRuntime(b *testing.B, engine proxyhost.Engine, cacheDir string) *proxyhost.Runtime {
	b.Helper()
	rt, err := proxyhost.NewRuntime(context.Background(), proxyhost.Options{Engine: engine, CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	return rt
}

// startVM compiles and starts a subject; logs are counted, not kept.
func startVM(b *testing.B, rt *proxyhost.Runtime, s subject) *proxyhost.VM {
	b.Helper()
	ctx := context.Background()
	wasm, err := s.wasm()
	if err != nil {
		b.Skipf("plugin unavailable: %v", err)
	}
	p, err := rt.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	vm, err := p.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(s.config), Properties: s.props, LogLevel: proxyhost.LogCritical})
	if err != nil {
		b.Fatal(err)
	}
	return vm
}

// BenchmarkWasm runs each plugin's request-headers phase (one context, the
// callback over and over on a fresh copy of the headers) and its whole
// request lifecycle (context create, request headers, done/log/delete),
// reporting the proxy-wasm host calls and host-to-guest copies per request.
func BenchmarkWasm(b *testing.B) {
	for _, engine := range []proxyhost.Engine{proxyhost.Compiler, proxyhost.Interpreter} {
		rt := newRuntime(b, engine, proxyhost.DefaultCacheDir())
		for _, s := range subjects(engine) {
			b.Run(fmt.Sprintf("engine=%s/plugin=%s/phase=headers", engine, s.name), func(b *testing.B) {
				vm := startVM(b, rt, s)
				defer vm.Close()
				h, err := vm.NewHTTPContext()
				if err != nil {
					b.Fatal(err)
				}
				check(b, vm, h, s)
				measure(b, vm, func() {
					if _, err := h.OnRequestHeaders(s.headers, true); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run(fmt.Sprintf("engine=%s/plugin=%s/phase=lifecycle", engine, s.name), func(b *testing.B) {
				vm := startVM(b, rt, s)
				defer vm.Close()
				measure(b, vm, func() {
					h, err := vm.NewHTTPContext()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := h.OnRequestHeaders(s.headers, true); err != nil {
						b.Fatal(err)
					}
					if err := h.Done(); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
		rt.Close(context.Background())
	}
}

// check runs one request and fails unless it continued without a local reply.
func check(b *testing.B, vm *proxyhost.VM, h *proxyhost.HTTPContext, s subject) {
	b.Helper()
	a, err := h.OnRequestHeaders(s.headers, true)
	if err != nil || a != proxyhost.Continue || h.LocalResponse() != nil {
		b.Fatalf("%s: action %v, local reply %+v, err %v, logs %v", s.name, a, h.LocalResponse(), err, vm.Logs())
	}
}

func measure(b *testing.B, vm *proxyhost.VM, op func()) {
	b.ReportAllocs()
	calls, copies := vm.HostCallCount(), vm.GuestCopies()
	b.ResetTimer()
	for range b.N {
		op()
	}
	b.StopTimer()
	b.ReportMetric(float64(vm.HostCallCount()-calls)/float64(b.N), "hostcalls/op")
	b.ReportMetric(float64(vm.GuestCopies()-copies)/float64(b.N), "copies/op")
}

// BenchmarkCompile measures compiling the filter module: cold (no cache),
// and cached (a new runtime reading a warm compilation cache directory).
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	for _, engine := range []proxyhost.Engine{proxyhost.Compiler, proxyhost.Interpreter} {
		b.Run(fmt.Sprintf("engine=%s/plugin=filter/cache=cold", engine), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				rt := newRuntime(b, engine, "")
				b.StartTimer()
				if _, err := rt.Compile(ctx, bins.filter); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rt.Close(ctx)
				b.StartTimer()
			}
		})
	}
	b.Run("engine=compiler/plugin=filter/cache=warm", func(b *testing.B) {
		dir := b.TempDir()
		warm := newRuntime(b, proxyhost.Compiler, dir)
		if _, err := warm.Compile(ctx, bins.filter); err != nil {
			b.Fatal(err)
		}
		warm.Close(ctx)
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			rt := newRuntime(b, proxyhost.Compiler, dir)
			b.StartTimer()
			if _, err := rt.Compile(ctx, bins.filter); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			rt.Close(ctx)
			b.StartTimer()
		}
	})
}

// BenchmarkInstantiate measures one VM instance: instantiate, start with
// the configuration, close. B/op is the Go heap one instance allocates (the
// guest's linear memory included); wasm-bytes/vm is that linear memory.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	rt := newRuntime(b, proxyhost.Compiler, proxyhost.DefaultCacheDir())
	defer rt.Close(ctx)
	for _, s := range subjects(proxyhost.Compiler) {
		if s.name == "oneheader" || s.name == "http_headers" || strings.HasPrefix(s.name, "floor") || strings.HasPrefix(s.name, "baseline") {
			continue
		}
		b.Run("engine=compiler/plugin="+s.name, func(b *testing.B) {
			wasm, err := s.wasm()
			if err != nil {
				b.Skipf("plugin unavailable: %v", err)
			}
			p, err := rt.Compile(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			cfg := proxyhost.VMConfig{PluginConfig: []byte(s.config), Properties: s.props, LogLevel: proxyhost.LogCritical}
			before := heapInUse()
			vm, err := p.NewVM(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			live, mem := heapInUse()-before, vm.MemoryBytes()
			vm.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				vm, err := p.NewVM(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				vm.Close()
			}
			b.ReportMetric(float64(mem), "wasm-bytes/vm")
			b.ReportMetric(float64(live), "live-bytes/vm")
		})
	}
}

// heapInUse is the live Go heap after a collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// pairs are the target ratios measured by BenchmarkPaired: filter ÷ floor
// and filter ÷ the filter at artifact.BaselineRevision.
var pairs = []struct{ name, a, b string }{
	{"outbound÷floor", "filter-outbound/routes=10", "floor-outbound"},
	{"inbound÷floor", "filter-inbound", "floor-inbound"},
	{"outbound÷baseline", "filter-outbound/routes=10", "baseline-outbound/routes=10"},
	{"inbound÷baseline", "filter-inbound", "baseline-inbound"},
}

// pairBlock is how many requests one plugin of a pair runs before the other.
const pairBlock = 64

// BenchmarkPaired measures the headers phase of two plugins in alternating
// blocks of pairBlock requests within one benchmark (compiler engine), so
// that both see the same load on a shared machine: the ratio of two rows of
// BenchmarkWasm, run minutes apart, drifts with the machine's load, this one
// does not. It reports each plugin's time per request (a-ns/op, b-ns/op)
// and their quotient (ratio); ns/op is the pair's.
func BenchmarkPaired(b *testing.B) {
	rt := newRuntime(b, proxyhost.Compiler, proxyhost.DefaultCacheDir())
	defer rt.Close(context.Background())
	byName := map[string]subject{}
	for _, s := range subjects(proxyhost.Compiler) {
		byName[s.name] = s
	}
	for _, p := range pairs {
		b.Run("pair="+p.name+"/phase=headers", func(b *testing.B) {
			sa, sb := byName[p.a], byName[p.b]
			va, vb := startVM(b, rt, sa), startVM(b, rt, sb)
			defer va.Close()
			defer vb.Close()
			ha, err := va.NewHTTPContext()
			if err != nil {
				b.Fatal(err)
			}
			hb, err := vb.NewHTTPContext()
			if err != nil {
				b.Fatal(err)
			}
			check(b, va, ha, sa)
			check(b, vb, hb, sb)
			run := func(h *proxyhost.HTTPContext, s subject, n int) time.Duration {
				start := time.Now()
				for range n {
					if _, err := h.OnRequestHeaders(s.headers, true); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}
			var ta, tb time.Duration
			block := 0
			b.ResetTimer()
			for done := 0; done < b.N; done += pairBlock {
				n := min(pairBlock, b.N-done)
				if block%2 == 0 {
					ta += run(ha, sa, n)
					tb += run(hb, sb, n)
				} else {
					tb += run(hb, sb, n)
					ta += run(ha, sa, n)
				}
				block++
			}
			b.StopTimer()
			b.ReportMetric(float64(ta.Nanoseconds())/float64(b.N), "a-ns/op")
			b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "b-ns/op")
			b.ReportMetric(float64(ta)/float64(tb), "ratio")
		})
	}
}
