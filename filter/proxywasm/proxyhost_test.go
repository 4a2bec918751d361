package proxywasm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/bench/proxyhost"
	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
	"github.com/ecsmesh/ecsmesh/filter/proxywasm"
)

// TestBehaviourProxyhost runs the whole behaviour table through the .wasm in
// bench/proxyhost (both engines), whose header map removes every value of a
// name as Envoy does, so the repeated-header cases run here too. One VM per
// suite: the cases of a suite share the plugin, as in Envoy.
func TestBehaviourProxyhost(t *testing.T) {
	ctx := context.Background()
	keys := filtertest.NewKeys()
	for _, engine := range []proxyhost.Engine{proxyhost.Compiler, proxyhost.Interpreter} {
		t.Run(engine.String(), func(t *testing.T) {
			rt, err := proxyhost.NewRuntime(ctx, proxyhost.Options{Engine: engine})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(ctx)
			plugin, err := rt.Compile(ctx, wasmBinary)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range keys.Suites() {
				vm, err := plugin.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(s.Config)})
				if err != nil {
					t.Fatalf("%s: %v", s.Name, err)
				}
				for _, tc := range s.Cases {
					t.Run(s.Name+"/"+tc.Name, func(t *testing.T) { runProxyhostCase(t, vm, tc) })
				}
				if err := vm.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func runProxyhostCase(t *testing.T, vm *proxyhost.VM, tc filtertest.Case) {
	vm.SetProperty("destination.address", []byte(tc.Destination))
	vm.SetProperty("connection.uri_san_peer_certificate", []byte(tc.PeerURISAN))
	before := map[string]uint64{}
	for _, name := range counterNames() {
		before[name], _ = vm.Metric(name)
	}
	logs := vm.LogCount(proxyhost.LogError)
	h, err := vm.NewHTTPContext()
	if err != nil {
		t.Fatal(err)
	}
	action, err := h.OnRequestHeaders(tc.Headers, true)
	if err != nil {
		t.Fatal(err)
	}
	resp := h.LocalResponse()
	if tc.WantStatus == 0 {
		if resp != nil {
			t.Fatalf("local reply %d %q, want the request to continue", resp.StatusCode, resp.Body)
		}
		if action != proxyhost.Continue {
			t.Fatalf("action %v, want continue", action)
		}
		for name, want := range tc.WantHeaders {
			var vals []string
			for _, kv := range h.RequestHeaders() {
				if kv[0] == name {
					vals = append(vals, kv[1])
				}
			}
			if want == "" && len(vals) > 0 || want != "" && (len(vals) != 1 || vals[0] != want) {
				t.Errorf("header %s = %q, want %q", name, vals, want)
			}
		}
	} else if resp == nil || int(resp.StatusCode) != tc.WantStatus || string(resp.Body) != tc.WantBody {
		t.Fatalf("local reply %+v, want %d %q", resp, tc.WantStatus, tc.WantBody)
	}
	if vm.TickPeriod() != proxywasm.FlushPeriodMillis {
		t.Errorf("tick period %d ms, want %d", vm.TickPeriod(), proxywasm.FlushPeriodMillis)
	}
	if err := vm.Tick(); err != nil { // counters reach the host on a tick
		t.Fatal(err)
	}
	for _, name := range counterNames() {
		want := uint64(0)
		for _, w := range tc.WantCounters {
			if w == name {
				want = 1
			}
		}
		if v, _ := vm.Metric(name); v-before[name] != want {
			t.Errorf("counter %s moved by %d, want %d", name, v-before[name], want)
		}
	}
	if n := vm.LogCount(proxyhost.LogError); n != logs {
		var msgs []string
		for _, l := range vm.Logs() {
			msgs = append(msgs, l.Message)
		}
		t.Errorf("error logs: %s", strings.Join(msgs, "; "))
	}
	if err := h.Done(); err != nil {
		t.Fatal(err)
	}
}
