package proxywasm_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
	"github.com/ecsmesh/ecsmesh/filter/proxywasm"
)

// wasmBinary is the plugin compiled for wasip1, built once by TestMain (or
// read from $ECSMESH_FILTER_WASM).
var wasmBinary []byte

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	path := os.Getenv("ECSMESH_FILTER_WASM")
	if path == "" {
		dir, err := os.MkdirTemp("", "ecsmesh-filter-wasm")
		if err != nil {
			fmt.Fprintf(os.Stderr, "proxywasm test: creating temp dir: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "ecsmesh-filter.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", path, "github.com/ecsmesh/ecsmesh/filter/cmd/wasm")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "proxywasm test: building the .wasm: %v\n%s", err, out)
			return 1
		}
	}
	var err error
	if wasmBinary, err = os.ReadFile(path); err != nil {
		fmt.Fprintf(os.Stderr, "proxywasm test: reading the .wasm: %v\n", err)
		return 1
	}
	return m.Run()
}

// vmTest runs f against the plugin compiled natively and as .wasm.
func vmTest(t *testing.T, f func(*testing.T, types.VMContext)) {
	t.Helper()
	t.Run("native", func(t *testing.T) { f(t, proxywasm.NewVMContext()) })
	t.Run("wasm", func(t *testing.T) {
		vm, err := proxytest.NewWasmVMContext(wasmBinary)
		if err != nil {
			t.Fatalf("loading the .wasm: %v", err)
		}
		defer vm.Close()
		f(t, vm)
	})
}

func counterNames() []string {
	return []string{"ecsmesh_filter_routed", "ecsmesh_filter_no_route", "ecsmesh_filter_denied",
		"ecsmesh_filter_allowed", "ecsmesh_filter_token_attached", "ecsmesh_filter_token_expired"}
}

// runCase starts a plugin with cfg on vm and sends one request through it.
func runCase(t *testing.T, vm types.VMContext, cfg string, tc filtertest.Case) {
	opt := proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration([]byte(cfg))
	if tc.Destination != "" {
		opt = opt.WithProperty([]string{"destination", "address"}, []byte(tc.Destination))
	}
	if tc.PeerURISAN != "" {
		opt = opt.WithProperty([]string{"connection", "uri_san_peer_certificate"}, []byte(tc.PeerURISAN))
	}
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	if st := host.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("plugin start failed: %v", host.GetErrorLogs())
	}
	id := host.InitializeHttpContext()
	action := host.CallOnRequestHeaders(id, tc.Headers, true)

	resp := host.GetSentLocalResponse(id)
	if tc.WantStatus == 0 {
		if resp != nil {
			t.Fatalf("local reply %d %q, want the request to continue", resp.StatusCode, resp.Data)
		}
		if action != types.ActionContinue {
			t.Fatalf("action %v, want continue", action)
		}
	} else {
		if resp == nil {
			t.Fatalf("no local reply, want %d", tc.WantStatus)
		}
		if int(resp.StatusCode) != tc.WantStatus || string(resp.Data) != tc.WantBody {
			t.Fatalf("local reply %d %q, want %d %q", resp.StatusCode, resp.Data, tc.WantStatus, tc.WantBody)
		}
		if action != types.ActionPause {
			t.Fatalf("action %v, want pause", action)
		}
	}
	got := host.GetCurrentRequestHeaders(id)
	if host.GetTickPeriod() != proxywasm.FlushPeriodMillis {
		t.Errorf("tick period %d ms, want %d", host.GetTickPeriod(), proxywasm.FlushPeriodMillis)
	}
	host.Tick() // counters reach the host on a tick
	for name, want := range tc.WantHeaders {
		var vals []string
		for _, h := range got {
			if h[0] == name {
				vals = append(vals, h[1])
			}
		}
		if want == "" && len(vals) > 0 || want != "" && (len(vals) != 1 || vals[0] != want) {
			t.Errorf("header %s = %q, want %q", name, vals, want)
		}
	}
	for _, name := range counterNames() {
		want := uint64(0)
		for _, w := range tc.WantCounters {
			if w == name {
				want = 1
			}
		}
		v, err := host.GetCounterMetric(name)
		if err != nil {
			t.Errorf("counter %s: %v", name, err)
		} else if v != want {
			t.Errorf("counter %s = %d, want %d", name, v, want)
		}
	}
	if logs := host.GetErrorLogs(); len(logs) > 0 {
		t.Errorf("error logs: %q", logs)
	}
}

func TestBehaviour(t *testing.T) {
	keys := filtertest.NewKeys()
	vmTest(t, func(t *testing.T, vm types.VMContext) {
		for _, s := range keys.Suites() {
			for _, tc := range s.Cases {
				if tc.RepeatedHeaders {
					continue // proxytest removes one value per call; TestBehaviourProxyhost runs these
				}
				t.Run(s.Name+"/"+tc.Name, func(t *testing.T) { runCase(t, vm, s.Config, tc) })
			}
		}
	})
}

func TestBadConfigFailsStart(t *testing.T) {
	vmTest(t, func(t *testing.T, vm types.VMContext) {
		for _, bc := range filtertest.BadConfigs() {
			t.Run(bc.Name, func(t *testing.T) {
				opt := proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration([]byte(bc.Config))
				host, reset := proxytest.NewHostEmulator(opt)
				defer reset()
				if st := host.StartPlugin(); st != types.OnPluginStartStatusFailed {
					t.Fatalf("plugin start = %v, want failed", st)
				}
				logs := host.GetErrorLogs()
				if len(logs) != 1 || !strings.Contains(logs[0], bc.WantLog) || strings.Contains(logs[0], "\n") {
					t.Fatalf("error logs %q, want one line containing %q", logs, bc.WantLog)
				}
			})
		}
	})
}
