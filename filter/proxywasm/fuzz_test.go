package proxywasm_test

import (
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
	"github.com/ecsmesh/ecsmesh/filter/internal/owncheck"
	"github.com/ecsmesh/ecsmesh/filter/proxywasm"
)

// FuzzRequestHeaders: random header sets and properties never make the
// plugin panic, log an error or answer 500, and a request let through
// carries exactly the filter's own headers the core decides, whatever the
// app sent (native build; the table covers the .wasm).
func FuzzRequestHeaders(f *testing.F) {
	keys := filtertest.NewKeys()
	configs := []string{keys.OutboundConfig(filtertest.Valid), keys.InboundConfig()}
	f.Add(uint8(0), "127.1.0.5:8080", ":authority", "redis.mesh.local", "x-ecsmesh-cluster", "admin")
	f.Add(uint8(1), "spiffe://default.mesh.local/workload/api", "x-ecsmesh-identity", "a.b.c", "X-Forwarded-Client-Cert", "URI=x")
	f.Fuzz(func(t *testing.T, which uint8, prop, k1, v1, k2, v2 string) {
		// Envoy hands filters lower-case names; proxytest removes one
		// value per call where Envoy removes all, so no repeated name.
		k1, k2 = strings.ToLower(k1), strings.ToLower(k2)
		if k1 == k2 {
			return
		}
		inbound := which%2 == 1
		opt := proxytest.NewEmulatorOption().WithVMContext(proxywasm.NewVMContext()).
			WithPluginConfiguration([]byte(configs[which%2]))
		if prop != "" {
			path := []string{"destination", "address"}
			if inbound {
				path = []string{"connection", "uri_san_peer_certificate"}
			}
			opt = opt.WithProperty(path, []byte(prop))
		}
		host, reset := proxytest.NewHostEmulator(opt)
		defer reset()
		if host.StartPlugin() != types.OnPluginStartStatusOK {
			t.Fatal("plugin start failed")
		}
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, [][2]string{{k1, v1}, {k2, v2}}, true)
		if resp := host.GetSentLocalResponse(id); resp != nil && resp.StatusCode == 500 {
			t.Fatalf("internal error: %v", host.GetErrorLogs())
		}
		if logs := host.GetErrorLogs(); len(logs) > 0 {
			t.Fatalf("error logs: %q", logs)
		}
		if host.GetSentLocalResponse(id) == nil {
			if err := owncheck.Check(configs[which%2], prop, [][2]string{{k1, v1}, {k2, v2}},
				host.GetCurrentRequestHeaders(id)); err != nil {
				t.Fatal(err)
			}
		}
	})
}
