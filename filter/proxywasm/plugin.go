// Package proxywasm adapts the filter core to the proxy-wasm ABI (Go SDK
// github.com/proxy-wasm/proxy-wasm-go-sdk). The plugin configuration is the
// JSON of filter.Config; the plugin reads the destination.address and
// connection.uri_san_peer_certificate properties and counts its decisions
// in proxy-wasm counters named after filter.Counter.
//
// Per request it makes: one call for the request header map (needed to
// strip every incoming x-ecsmesh-* header, and it also yields :authority
// and x-ecsmesh-identity), one property read, one removal per stripped
// header, then one call per header set, or one local reply.
package proxywasm

import (
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/filter"
	sdk "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// Property paths in proxy-wasm form.
var (
	destinationPath = []string{"destination", "address"}
	peerURISANPath  = []string{"connection", "uri_san_peer_certificate"}
)

// NewVMContext returns the root of the plugin, for sdk.SetVMContext.
func NewVMContext() types.VMContext { return &vmContext{} }

type vmContext struct{ types.DefaultVMContext }

// NewPluginContext implements types.VMContext.
func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

// pluginContext holds one compiled configuration and its counters.
type pluginContext struct {
	types.DefaultPluginContext
	compiled *filter.Compiled
	counters []counter
}

type counter struct {
	bit    filter.Counter
	metric sdk.MetricCounter
}

// OnPluginStart parses the configuration; a bad one fails the start with one
// error log line.
func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := sdk.GetPluginConfiguration()
	if err != nil {
		sdk.LogErrorf("ecsmesh: filter: reading plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	c, err := filter.Parse(data)
	if err != nil {
		sdk.LogErrorf("ecsmesh: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.compiled = c
	p.counters = p.counters[:0]
	for _, bit := range filter.Counters() {
		p.counters = append(p.counters, counter{bit: bit, metric: sdk.DefineCounterMetric(bit.Name())})
	}
	sdk.LogInfof("ecsmesh: filter started in %s mode with %d routes", c.Mode(), c.RouteCount())
	return types.OnPluginStartStatusOK
}

// NewHttpContext implements types.PluginContext.
func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{plugin: p}
}

type httpContext struct {
	types.DefaultHttpContext
	plugin   *pluginContext
	req      filter.Request
	decision filter.Decision
}

// OnHttpRequestHeaders strips, decides and applies the decision.
func (h *httpContext) OnHttpRequestHeaders(int, bool) (action types.Action) {
	defer func() {
		if r := recover(); r != nil {
			// Fail closed: a bug must not let a request through unchecked.
			sdk.LogErrorf("ecsmesh: filter: panic on request: %v", r)
			_ = sdk.SendHttpResponse(500, textPlain(), []byte("ecsmesh: internal error"), -1)
			action = types.ActionPause
		}
	}()
	c := h.plugin.compiled
	if c == nil {
		// Unreachable when the host honours a failed start; fail closed anyway.
		_ = sdk.SendHttpResponse(500, textPlain(), []byte("ecsmesh: filter has no configuration"), -1)
		return types.ActionPause
	}
	headers, err := sdk.GetHttpRequestHeaders()
	if err != nil {
		panic(fmt.Sprintf("reading request headers: %v", err))
	}
	h.req = filter.Request{}
	wantToken := c.NeedsIdentityToken()
	for _, kv := range headers {
		switch {
		case kv[0] == ":authority":
			h.req.Authority = kv[1]
		case wantToken && kv[0] == filter.HeaderIdentity && h.req.IdentityToken == "":
			h.req.IdentityToken = kv[1]
		}
		if c.Strip(kv[0]) {
			if err := sdk.RemoveHttpRequestHeader(kv[0]); err != nil {
				panic(fmt.Sprintf("removing header %s: %v", kv[0], err))
			}
		}
	}
	if c.Inbound() {
		h.req.PeerURISAN = property(peerURISANPath)
	} else {
		h.req.Destination = property(destinationPath)
	}
	if c.NeedsClock(&h.req) {
		h.req.Now = time.Now().Unix()
	}
	d := &h.decision
	c.Decide(&h.req, d)
	for _, ctr := range h.plugin.counters {
		if d.Events&ctr.bit != 0 {
			ctr.metric.Increment(1)
		}
	}
	if d.Status != 0 {
		if err := sdk.SendHttpResponse(uint32(d.Status), textPlain(), []byte(d.Body), -1); err != nil {
			sdk.LogErrorf("ecsmesh: filter: sending local reply: %v", err)
		}
		return types.ActionPause
	}
	for _, hd := range d.Headers() {
		if err := sdk.ReplaceHttpRequestHeader(hd.Name, hd.Value); err != nil {
			panic(fmt.Sprintf("setting header %s: %v", hd.Name, err))
		}
	}
	return types.ActionContinue
}

// property returns a string property, "" when Envoy does not have it.
func property(path []string) string {
	b, err := sdk.GetProperty(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func textPlain() [][2]string {
	return [][2]string{{"content-type", "text/plain; charset=utf-8"}}
}
