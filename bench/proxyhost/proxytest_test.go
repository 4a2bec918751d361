package proxyhost_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/bench/proxyhost"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// outcome is what one request produced, compared between hosts.
type outcome struct {
	Action  uint32
	Headers [][2]string
	Local   *local
	Metrics map[string]uint64
}

type local struct {
	Status  uint32
	Body    string
	Headers [][2]string
}

// request is one plugin, configuration and request.
type request struct {
	name    string
	wasm    func() []byte
	config  string
	props   map[string]string
	headers [][2]string
}

func baseHeaders(authority string, extra ...[2]string) [][2]string {
	h := [][2]string{{":authority", authority}, {":path", "/v1/items"}, {":method", "GET"},
		{":scheme", "http"}, {"user-agent", "bench/1"}, {"accept", "*/*"}}
	return append(h, extra...)
}

const (
	web = "spiffe://default.mesh.local/workload/web"
	api = "spiffe://default.mesh.local/workload/api"
	bad = "spiffe://default.mesh.local/workload/evil"
)

// redisToken is a syntactically valid JWT-SVID with exp in 2100 (the
// outbound side does not verify it), as the CP delivers it on the route to
// redis only.
const redisToken = "e30.eyJleHAiOjQxMDI0NDQ4MDB9.AA"

// issuer is the iss the inbound filter requires.
const issuer = "ecsmesh-cp/jwt-svid"

func outboundConfig() string {
	return `{"mode":"outbound","identity":{"spiffeId":"` + web + `"},
 "routes":[{"vip":"127.1.0.5:8080","hosts":["redis.mesh.local"],"cluster":"redis",
            "spiffeId":"spiffe://default.mesh.local/workload/redis","attachToken":true,"token":"` + redisToken + `","tokenExpiresAt":4102444800},
           {"vip":"127.1.0.6:80","hosts":["api.mesh.local"],"cluster":"api"}]}`
}

// signer makes an ES256 JWKS and JWT-SVIDs for the inbound cases.
type signer struct{ key *ecdsa.PrivateKey }

func newSigner(t *testing.T) signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{k}
}

func (s signer) jwks() string {
	b64 := base64.RawURLEncoding.EncodeToString
	x, y := make([]byte, 32), make([]byte, 32)
	s.key.X.FillBytes(x)
	s.key.Y.FillBytes(y)
	return fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":%q,"y":%q}]}`, b64(x), b64(y))
}

func (s signer) token(t *testing.T, sub string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "sub": sub, "aud": []string{web}, "exp": 4102444800})
	input := b64([]byte(`{"alg":"ES256","kid":"k1","typ":"JWT"}`)) + "." + b64(claims)
	sum := sha256.Sum256([]byte(input))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

func inboundConfig(jwks string) string {
	return `{"mode":"inbound","identity":{"spiffeId":"` + web + `"},
 "inbound":{"service":"web","default":"Deny","jwtIssuer":"` + issuer + `","jwks":` + jwks + `,
  "permissions":[{"type":"Prefix","value":"spiffe://default.mesh.local/","action":"Allow"},
                 {"type":"Exact","value":"` + bad + `","action":"Deny"}]}}`
}

func requests(t *testing.T) []request {
	s := newSigner(t)
	filter := func() []byte { return wasm.filter }
	in := inboundConfig(s.jwks())
	return []request{
		{"empty", func() []byte { return wasm.empty }, "", nil, baseHeaders("redis.mesh.local")},
		{"oneheader", func() []byte { return wasm.oneheader }, "", nil, baseHeaders("redis.mesh.local", [2]string{"x-bench", "0"})},
		{"outbound/vip+token", filter, outboundConfig(), map[string]string{"destination.address": "127.1.0.5:8080"},
			baseHeaders("127.1.0.5:8080", [2]string{"x-ecsmesh-peer-id", "spoofed"}, [2]string{"x-ecsmesh-cluster", "evil"})},
		{"outbound/authority", filter, outboundConfig(), map[string]string{"destination.address": "10.0.0.9:1"},
			baseHeaders("API.mesh.local:80")},
		{"outbound/no-route", filter, outboundConfig(), map[string]string{"destination.address": "10.0.0.9:1"},
			baseHeaders("nowhere.example")},
		{"inbound/mtls-allow", filter, in, map[string]string{"connection.uri_san_peer_certificate": api},
			baseHeaders("web", [2]string{"x-forwarded-client-cert", "URI=spoofed"}, [2]string{"x-ecsmesh-identity", "junk"})},
		{"inbound/mtls-deny", filter, in, map[string]string{"connection.uri_san_peer_certificate": bad}, baseHeaders("web")},
		{"inbound/anonymous", filter, in, nil, baseHeaders("web")},
		{"inbound/jwt", filter, in, nil, baseHeaders("web", [2]string{"x-ecsmesh-identity", s.token(t, api)})},
		{"inbound/jwt-denied", filter, in, nil, baseHeaders("web", [2]string{"x-ecsmesh-identity", s.token(t, bad)})},
	}
}

// viaHost runs the request in proxyhost and returns the outcome and the
// names of the metrics the plugin defined.
func viaHost(t *testing.T, rt *proxyhost.Runtime, r request) outcome {
	t.Helper()
	ctx := context.Background()
	p, err := rt.Compile(ctx, r.wasm())
	if err != nil {
		t.Fatal(err)
	}
	props := map[string][]byte{}
	for k, v := range r.props {
		props[k] = []byte(v)
	}
	vm, err := p.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(r.config), Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	h, err := vm.NewHTTPContext()
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.OnRequestHeaders(r.headers, true)
	if err != nil {
		t.Fatal(err)
	}
	o := outcome{Action: uint32(a), Headers: h.RequestHeaders(), Metrics: map[string]uint64{}}
	if lr := h.LocalResponse(); lr != nil {
		o.Local = &local{lr.StatusCode, string(lr.Body), lr.Headers}
	}
	if err := h.Done(); err != nil {
		t.Fatal(err)
	}
	// The filter adds its counters to the host's on a tick.
	if err := vm.Tick(); err != nil {
		t.Fatal(err)
	}
	for _, m := range vm.Metrics() {
		o.Metrics[m.Name] = m.Value
	}
	for _, l := range vm.Logs() {
		if l.Level >= proxyhost.LogError {
			t.Errorf("plugin logged %s: %s", l.Level, l.Message)
		}
	}
	return o
}

// viaProxytest runs the request through the SDK's proxytest emulator with
// the same .wasm (proxytest.NewWasmVMContext).
func viaProxytest(t *testing.T, r request, metrics []string) outcome {
	t.Helper()
	vmc, err := proxytest.NewWasmVMContext(r.wasm())
	if err != nil {
		t.Fatal(err)
	}
	defer vmc.Close()
	opt := proxytest.NewEmulatorOption().WithVMContext(vmc).WithPluginConfiguration([]byte(r.config))
	for k, v := range r.props {
		opt = opt.WithProperty(strings.Split(k, "."), []byte(v))
	}
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	if st := host.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("proxytest: plugin start failed: %v", host.GetErrorLogs())
	}
	id := host.InitializeHttpContext()
	a := host.CallOnRequestHeaders(id, r.headers, true)
	o := outcome{Action: uint32(a), Headers: host.GetCurrentRequestHeaders(id), Metrics: map[string]uint64{}}
	if lr := host.GetSentLocalResponse(id); lr != nil {
		o.Local = &local{lr.StatusCode, string(lr.Data), lr.Headers}
	}
	host.CompleteHttpContext(id)
	host.Tick() // the filter adds its counters to the host's on a tick
	for _, m := range metrics {
		v, err := host.GetCounterMetric(m)
		if err != nil {
			t.Fatalf("proxytest: counter %s: %v", m, err)
		}
		o.Metrics[m] = v
	}
	return o
}

// TestMatchesProxytest runs each plugin and request in proxyhost (both
// engines) and in proxytest: same action, headers out, local reply, counters.
func TestMatchesProxytest(t *testing.T) {
	ctx := context.Background()
	for _, engine := range []proxyhost.Engine{proxyhost.Compiler, proxyhost.Interpreter} {
		rt, err := proxyhost.NewRuntime(ctx, proxyhost.Options{Engine: engine, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close(ctx)
		for _, r := range requests(t) {
			t.Run(engine.String()+"/"+r.name, func(t *testing.T) {
				got := viaHost(t, rt, r)
				names := make([]string, 0, len(got.Metrics))
				for n := range got.Metrics {
					names = append(names, n)
				}
				want := viaProxytest(t, r, names)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("proxyhost:\n%+v\nproxytest:\n%+v", dump(got), dump(want))
				}
				// The JWT-SVID cases exercise what they claim to.
				switch {
				case r.name == "inbound/jwt" && got.Local != nil:
					t.Errorf("a JWT-SVID for web from its issuer was refused: %+v", dump(got))
				case r.name == "inbound/jwt-denied" && (got.Local == nil || got.Local.Status != 403 || !strings.Contains(got.Local.Body, bad)):
					t.Errorf("a verified but denied caller: %+v", dump(got))
				}
			})
		}
	}
}

func dump(o outcome) string {
	b, _ := json.MarshalIndent(o, "", " ")
	return string(b)
}
