package proxyhost_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/bench/proxyhost"
)

// TestThirdPartyExample runs the SDK's own examples/http_headers, built
// unchanged, in proxyhost and checks what it does on both request and
// response headers, then the same request in proxytest.
func TestThirdPartyExample(t *testing.T) {
	if wasm.example == nil {
		t.Skipf("SDK example not available: %v", wasm.exampleErr)
	}
	ctx := context.Background()
	rt, err := proxyhost.NewRuntime(ctx, proxyhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	p, err := rt.Compile(ctx, wasm.example)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := p.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(`{"header":"x-from-config","value":"yes"}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	h, err := vm.NewHTTPContext()
	if err != nil {
		t.Fatal(err)
	}
	if a, err := h.OnRequestHeaders(baseHeaders("example.com"), true); err != nil || a != proxyhost.Continue {
		t.Fatalf("request headers: %v %v", a, err)
	}
	if v, _ := h.RequestHeader("test"); v != "best" {
		t.Errorf("request header test = %q, want best", v)
	}
	if _, err := h.OnResponseHeaders([][2]string{{":status", "200"}}, true); err != nil {
		t.Fatal(err)
	}
	resp := h.ResponseHeaders()
	for _, want := range [][2]string{{"x-proxy-wasm-go-sdk-example", "http_headers"}, {"x-from-config", "yes"}} {
		if !slices.Contains(resp, want) {
			t.Errorf("response headers %q lack %q", resp, want)
		}
	}
	if err := h.Done(); err != nil {
		t.Fatal(err)
	}
	var logged bool
	for _, l := range vm.Logs() {
		logged = logged || strings.Contains(l.Message, "request header --> :authority: example.com")
	}
	if !logged {
		t.Errorf("no request header log line in %v", vm.Logs())
	}

	r := request{"http_headers", func() []byte { return wasm.example }, `{"header":"x-from-config","value":"yes"}`, nil, baseHeaders("example.com")}
	if got, want := viaHost(t, rt, r), viaProxytest(t, r, nil); !equalOutcome(got, want) {
		t.Errorf("proxyhost:\n%s\nproxytest:\n%s", dump(got), dump(want))
	}
}

func equalOutcome(a, b outcome) bool {
	a.Metrics, b.Metrics = nil, nil
	return dump(a) == dump(b)
}

// TestBadConfigRefusesStart checks that a plugin refusing its configuration
// is a *StartError carrying its log line.
func TestBadConfigRefusesStart(t *testing.T) {
	ctx := context.Background()
	rt, err := proxyhost.NewRuntime(ctx, proxyhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	p, err := rt.Compile(ctx, wasm.filter)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(`{"mode":"sideways"}`)})
	var se *proxyhost.StartError
	if !errors.As(err, &se) || se.Phase != "proxy_on_configure" || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("NewVM error = %v, want a StartError naming mode", err)
	}
}

// TestHostCallsAndReuse checks the host-call counters and that a recycled
// context starts clean.
func TestHostCallsAndReuse(t *testing.T) {
	ctx := context.Background()
	rt, err := proxyhost.NewRuntime(ctx, proxyhost.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	p, err := rt.Compile(ctx, wasm.oneheader)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := p.NewVM(ctx, proxyhost.VMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	before := vm.HostCallCount()
	for i := range 3 {
		h, err := vm.NewHTTPContext()
		if err != nil {
			t.Fatal(err)
		}
		hdrs := baseHeaders("a")
		if i == 0 {
			hdrs = append(hdrs, [2]string{"x-old", "1"})
		}
		if _, err := h.OnRequestHeaders(hdrs, true); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.RequestHeader("x-old"); ok != (i == 0) {
			t.Errorf("request %d: x-old present = %v", i, ok)
		}
		if v, _ := h.RequestHeader("X-Bench"); v != "1" {
			t.Errorf("request %d: x-bench = %q", i, v)
		}
		if err := h.Done(); err != nil {
			t.Fatal(err)
		}
	}
	if got := vm.HostCallCount() - before; got != 3 {
		t.Errorf("host calls = %d (%v), want 3 (one replace per request)", got, vm.HostCalls())
	}
	if n := vm.HostCalls()["proxy_replace_header_map_value"]; n != 3 {
		t.Errorf("replace calls = %d, want 3", n)
	}
}
