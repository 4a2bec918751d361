package envoygo

import (
	"strings"
	"testing"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
	"github.com/ecsmesh/ecsmesh/filter/internal/owncheck"
)

func stringAny(t testing.TB, s string) *anypb.Any {
	t.Helper()
	a, err := anypb.New(wrapperspb.String(s))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func parse(t testing.TB, cfg *anypb.Any) (*Config, *fakeConfigCallbacks) {
	t.Helper()
	cc := &fakeConfigCallbacks{}
	v, err := Parser{}.Parse(cfg, cc)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return v.(*Config), cc
}

func TestBehaviour(t *testing.T) {
	keys := filtertest.NewKeys()
	for _, s := range keys.Suites() {
		for _, tc := range s.Cases {
			t.Run(s.Name+"/"+tc.Name, func(t *testing.T) {
				cfg, cc := parse(t, stringAny(t, s.Config))
				cb := &fakeCallbacks{props: map[string]string{}}
				if tc.Destination != "" {
					cb.props["destination.address"] = tc.Destination
				}
				if tc.PeerURISAN != "" {
					cb.props["connection.uri_san_peer_certificate"] = tc.PeerURISAN
				}
				h := &fakeHeaders{list: append([][2]string(nil), tc.Headers...)}
				st := Factory(cfg, cb).DecodeHeaders(h, true)
				if tc.WantStatus == 0 {
					if st != api.Continue || cb.reply != nil {
						t.Fatalf("status %v, reply %+v; want continue", st, cb.reply)
					}
				} else {
					if st != api.LocalReply || cb.reply == nil || cb.reply.status != tc.WantStatus || cb.reply.body != tc.WantBody {
						t.Fatalf("status %v, reply %+v; want %d %q", st, cb.reply, tc.WantStatus, tc.WantBody)
					}
					if ct := cb.reply.headers["content-type"]; len(ct) != 1 || !strings.HasPrefix(ct[0], "text/plain") {
						t.Errorf("content-type %q", ct)
					}
				}
				for name, want := range tc.WantHeaders {
					var vals []string
					for _, kv := range h.list {
						if kv[0] == name {
							vals = append(vals, kv[1])
						}
					}
					if want == "" && len(vals) > 0 || want != "" && (len(vals) != 1 || vals[0] != want) {
						t.Errorf("header %s = %q, want %q", name, vals, want)
					}
				}
				for name, ctr := range cc.counters {
					want := uint64(0)
					for _, w := range tc.WantCounters {
						if w == name {
							want = 1
						}
					}
					if ctr.v != want {
						t.Errorf("counter %s = %d, want %d", name, ctr.v, want)
					}
				}
				if len(cc.counters) != len(filter.Counters()) {
					t.Errorf("defined %d counters, want %d", len(cc.counters), len(filter.Counters()))
				}
				if strings.HasPrefix(s.Name, "outbound") && tc.WantStatus == 0 && cb.routeClears != 1 {
					t.Errorf("route cache cleared %d times, want 1 (cluster_header)", cb.routeClears)
				}
				if len(cb.logs) > 0 {
					t.Errorf("logs: %q", cb.logs)
				}
			})
		}
	}
}

func TestBadConfigs(t *testing.T) {
	for _, bc := range filtertest.BadConfigs() {
		t.Run(bc.Name, func(t *testing.T) {
			_, err := Parser{}.Parse(stringAny(t, bc.Config), &fakeConfigCallbacks{})
			if err == nil || !strings.Contains(err.Error(), bc.WantLog) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Parse error %v, want one line containing %q", err, bc.WantLog)
			}
		})
	}
}

func TestConfigForms(t *testing.T) {
	const js = `{"mode":"outbound","routes":[{"vip":"127.1.0.5:8080","cluster":"redis","attachToken":true}]}`
	st := &structpb.Struct{}
	if err := protojson.Unmarshal([]byte(js), st); err != nil {
		t.Fatal(err)
	}
	typed, err := anypb.New(&xdstype.TypedStruct{TypeUrl: "type.googleapis.com/ecsmesh.filter.Config", Value: st})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := anypb.New(st)
	raw, _ := anypb.New(wrapperspb.Bytes([]byte(js)))
	for name, a := range map[string]*anypb.Any{"string": stringAny(t, js), "bytes": raw, "struct": plain, "typed struct": typed} {
		cfg, _ := parse(t, a)
		if cl, ok := cfg.Compiled().Lookup("127.1.0.5:8080", ""); !ok || cl != "redis" {
			t.Errorf("%s: route lookup = %q, %v", name, cl, ok)
		}
	}
	wrong, _ := anypb.New(durationpb.New(1))
	if _, err := (Parser{}).Parse(wrong, nil); err == nil || !strings.Contains(err.Error(), "must be a StringValue") {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := (Parser{}).Parse(nil, nil); err == nil {
		t.Error("nil plugin_config accepted")
	}
	// Per-route parsing passes nil callbacks: no counters, no crash.
	if v, err := (Parser{}).Parse(stringAny(t, js), nil); err != nil || v.(*Config).counters != nil {
		t.Errorf("per-route parse: %v", err)
	}
	if got := (Parser{}).Merge("parent", "child"); got != "child" {
		t.Errorf("Merge = %v", got)
	}
}

func TestPanicFailsClosed(t *testing.T) {
	cfg, _ := parse(t, stringAny(t, `{"mode":"outbound"}`))
	cb := &fakeCallbacks{}
	// A header map whose Host panics makes the filter panic mid-request.
	h := &panicHeaders{}
	if st := Factory(cfg, cb).DecodeHeaders(h, true); st != api.LocalReply || cb.reply == nil || cb.reply.status != 500 {
		t.Fatalf("status %v reply %+v, want local 500", st, cb.reply)
	}
	if st := Factory("not a config", cb).DecodeHeaders(&fakeHeaders{}, true); st != api.LocalReply {
		t.Fatalf("unconfigured filter let the request through: %v", st)
	}
}

type panicHeaders struct{ fakeHeaders }

func (*panicHeaders) Host() string { panic("envoygo test: Host") }

// FuzzDecodeHeaders: random header sets never crash the filter, and a
// request let through carries exactly the filter's own headers the core
// decides, whatever the app sent.
func FuzzDecodeHeaders(f *testing.F) {
	keys := filtertest.NewKeys()
	cfgs := []string{keys.OutboundConfig(filtertest.Valid), keys.InboundConfig()}
	out, _ := parse(f, stringAny(f, cfgs[0]))
	in, _ := parse(f, stringAny(f, cfgs[1]))
	f.Add("127.1.0.5:8080", "", ":authority", "redis.mesh.local", "x-ecsmesh-cluster", "evil")
	f.Add("", "spiffe://default.mesh.local/workload/api", "x-ecsmesh-identity", "a.b.c", "x-forwarded-client-cert", "URI=x")
	f.Fuzz(func(t *testing.T, dest, peer, k1, v1, k2, v2 string) {
		for i, cfg := range []*Config{out, in} {
			cb := &fakeCallbacks{props: map[string]string{"destination.address": dest, "connection.uri_san_peer_certificate": peer}}
			h := &fakeHeaders{list: [][2]string{{strings.ToLower(k1), v1}, {strings.ToLower(k2), v2}}}
			st := Factory(cfg, cb).DecodeHeaders(h, true)
			if cb.reply != nil && cb.reply.status == 500 {
				t.Fatalf("internal error: %v", cb.logs)
			}
			if st != api.Continue {
				continue
			}
			prop := dest
			if i == 1 {
				prop = peer
			}
			sent := [][2]string{{strings.ToLower(k1), v1}, {strings.ToLower(k2), v2}}
			if err := owncheck.Check(cfgs[i], prop, sent, h.list); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestRecycledStreamForgetsConfig: a filter returned to the pool by
// OnDestroy keeps nothing of its request: reused under a configuration that
// is not a *Config, it still refuses the request.
func TestRecycledStreamForgetsConfig(t *testing.T) {
	keys := filtertest.NewKeys()
	cfg, _ := parse(t, stringAny(t, keys.OutboundConfig(filtertest.Valid)))
	for range 100 {
		f := Factory(cfg, &fakeCallbacks{props: map[string]string{"destination.address": "127.1.0.5:8080"}})
		if st := f.DecodeHeaders(&fakeHeaders{}, true); st != api.Continue {
			t.Fatalf("status %v", st)
		}
		f.OnDestroy(api.Normal)
		cb := &fakeCallbacks{}
		g := Factory("not a config", cb)
		if st := g.DecodeHeaders(&fakeHeaders{}, true); st != api.LocalReply || cb.reply == nil || cb.reply.status != 500 {
			t.Fatalf("recycled filter without configuration: status %v reply %+v", st, cb.reply)
		}
		g.OnDestroy(api.Normal)
	}
}
