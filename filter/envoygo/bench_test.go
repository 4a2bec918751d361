package envoygo

import (
	"testing"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"

	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
)

// BenchmarkDecodeHeaders runs whole requests (Factory, DecodeHeaders,
// OnDestroy) through the Go filter adapter against the fake callbacks, with
// the request headers of the proxy-wasm benchmarks. allocs/op is what the
// adapter and the core allocate per request; the fakes allocate nothing
// here (Envoy's own header-map copies are not part of it).
func BenchmarkDecodeHeaders(b *testing.B) {
	keys := filtertest.NewKeys()
	base := [][2]string{{":authority", "redis.mesh.local"}, {":path", "/v1/items"}, {":method", "GET"},
		{":scheme", "http"}, {"user-agent", "bench/1"}, {"accept", "*/*"},
		{"x-request-id", "5b1b7a51-3f3c-4f0e-9d1e-7c6e0c1e2a3b"}}
	tok := keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid))
	for _, tc := range []struct {
		name, config string
		props        map[string]string
		extra        [][2]string
		want         string // the header the request must leave with
	}{
		{"outbound", keys.OutboundConfig(filtertest.Valid), map[string]string{"destination.address": "127.1.0.5:8080"}, nil, "x-ecsmesh-identity"},
		{"inbound-mtls", keys.InboundConfig(), map[string]string{"connection.uri_san_peer_certificate": filtertest.API}, nil, "x-ecsmesh-peer-id"},
		{"inbound-jwt", keys.InboundConfig(), map[string]string{}, [][2]string{{"x-ecsmesh-identity", tok}}, "x-ecsmesh-peer-id"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg, _ := parse(b, stringAny(b, tc.config))
			cb := &fakeCallbacks{props: tc.props}
			in := append(append([][2]string(nil), base...), tc.extra...)
			h := &fakeHeaders{list: make([][2]string, 0, len(in)+4)}
			run := func() {
				h.list = append(h.list[:0], in...)
				f := Factory(cfg, cb)
				if st := f.DecodeHeaders(h, true); st != api.Continue {
					b.Fatalf("status %v reply %+v", st, cb.reply)
				}
				f.OnDestroy(api.Normal)
			}
			run()
			if v, _ := h.Get(tc.want); v == "" {
				b.Fatalf("no %s after the filter: %q", tc.want, h.list)
			}
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
		})
	}
}
