package filter

import (
	"fmt"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
)

func BenchmarkOutbound(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		c := mustParse(b, routesConfig(n))
		last := n - 1
		cases := []struct {
			name string
			req  Request
		}{
			{"vip", Request{Destination: fmt.Sprintf("127.%d.%d.%d:8080", 1+last/65536, last/256%256, last%256), Now: 1}},
			{"authority", Request{Destination: "127.0.0.1:1", Authority: fmt.Sprintf("svc-%d.mesh.local:8080", last), Now: 1}},
			{"authority-upper", Request{Authority: fmt.Sprintf("SVC-%d.Mesh.Local", last), Now: 1}},
		}
		for _, tc := range cases {
			b.Run(fmt.Sprintf("routes=%d/%s", n, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				var d Decision
				for b.Loop() {
					c.Decide(&tc.req, &d)
				}
				if d.Status != 0 {
					b.Fatalf("not routed: %+v", d)
				}
			})
		}
	}
}

func BenchmarkInbound(b *testing.B) {
	keys := filtertest.NewKeys()
	c := mustParse(b, keys.InboundConfig())
	tok := keys.Good.Token(filtertest.Claims(filtertest.API, filtertest.Web, filtertest.Valid))
	cases := []struct {
		name string
		req  Request
	}{
		{"mtls-allow", Request{PeerURISAN: filtertest.API, Now: 1}},
		{"mtls-deny", Request{PeerURISAN: filtertest.Evil, Now: 1}},
		{"jwt-cached", Request{IdentityToken: tok, Now: 1}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var d Decision
			for b.Loop() {
				c.Decide(&tc.req, &d)
			}
		})
	}
	b.Run("jwt-uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.verifyUncached(tok)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	cfg := []byte(routesConfig(1000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlat decides outbound by VIP with 10 and with 10,000 routes in
// alternating blocks of 1,024 requests, so that both see the same load, and
// reports the quotient (ratio, target ≤ 1.5: flat) with each side's time.
func BenchmarkFlat(b *testing.B) {
	type side struct {
		c   *Compiled
		req Request
	}
	var sides [2]side
	for i, n := range []int{10, 10000} {
		last := n - 1
		sides[i] = side{mustParse(b, routesConfig(n)),
			Request{Destination: fmt.Sprintf("127.%d.%d.%d:8080", 1+last/65536, last/256%256, last%256), Now: 1}}
	}
	var d Decision
	var t [2]time.Duration
	const block = 1024
	b.ReportAllocs()
	b.ResetTimer()
	for done, k := 0, 0; done < b.N; done, k = done+block, k+1 {
		n := min(block, b.N-done)
		for j := range 2 {
			s := &sides[(j+k)%2]
			start := time.Now()
			for range n {
				s.c.Decide(&s.req, &d)
			}
			t[(j+k)%2] += time.Since(start)
		}
	}
	b.StopTimer()
	if d.Status != 0 {
		b.Fatalf("not routed: %+v", d)
	}
	b.ReportMetric(float64(t[0].Nanoseconds())/float64(b.N), "routes10-ns/op")
	b.ReportMetric(float64(t[1].Nanoseconds())/float64(b.N), "routes10000-ns/op")
	b.ReportMetric(float64(t[1])/float64(t[0]), "ratio")
}
