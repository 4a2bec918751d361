// Package proxywasm adapts the filter core to the proxy-wasm ABI (Go SDK
// github.com/proxy-wasm/proxy-wasm-go-sdk). The plugin configuration is the
// JSON of filter.Config; the plugin reads the destination.address and
// connection.uri_san_peer_certificate properties and counts its decisions
// in proxy-wasm counters named after filter.Counter.
//
// Per request it reads only what the decision needs and never the whole
// header map. Outbound: the destination.address property, :authority only
// when that address matches no route. Inbound: the peer certificate's URI
// SAN, x-ecsmesh-identity only without one. A request let through then
// costs one replacement per header set (Envoy's replace_header_map_value
// replaces every value) and one removal per other header of
// filter.Compiled.StripNames; a refused one the local reply. Counters are
// kept in the guest and added to Envoy's once a second (FlushPeriodMillis).
// The clock is one WASI call: inbound on every JWT-SVID check, outbound (the
// expiry of the sidecar's own token) once a tick or per clockReuse requests. Only the values the host copies
// into the guest are allocated (by the SDK's proxy_on_memory_allocate).
package proxywasm

import (
	"fmt"
	"runtime"

	sdk "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/ecsmesh/ecsmesh/filter"
)

// propertyPath is a property path in the SDK's form and serialized for the
// host (segments joined by NUL), once.
type propertyPath struct {
	path       []string
	serialized []byte
}

func newPropertyPath(segments ...string) *propertyPath {
	p := &propertyPath{path: segments}
	for i, s := range segments {
		if i > 0 {
			p.serialized = append(p.serialized, 0)
		}
		p.serialized = append(p.serialized, s...)
	}
	return p
}

// Property paths in proxy-wasm form.
var (
	destinationPath = newPropertyPath("destination", "address")
	peerURISANPath  = newPropertyPath("connection", "uri_san_peer_certificate")
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
	// pending are the counter increments not yet sent to the host, one per
	// entry of counters; flushed on every tick and when the plugin stops.
	pending []uint64
	// now caches the wall clock (Unix seconds) for the outbound token
	// expiry check: refreshed on every tick and after clockReuse requests,
	// whichever comes first (see outboundNow).
	now     int64
	nowUses int
	// free holds finished HTTP contexts for reuse: one request allocates
	// no context in steady state.
	free []*httpContext
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
	// An update leaves the previous configuration and the parse's garbage:
	// collect them now, so that the guest's linear memory (which never
	// shrinks) holds one configuration, not every one until the pacer's
	// next cycle.
	runtime.GC()
	if p.counters == nil {
		// Metrics are defined once per VM: the IDs do not change on a
		// configuration update.
		for _, bit := range filter.Counters() {
			p.counters = append(p.counters, counter{bit: bit, metric: sdk.DefineCounterMetric(bit.Name())})
		}
		p.pending = make([]uint64, len(p.counters))
		if err := sdk.SetTickPeriodMilliSeconds(FlushPeriodMillis); err != nil {
			sdk.LogErrorf("ecsmesh: filter: setting the counter flush period: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	sdk.LogInfof("ecsmesh: filter started in %s mode with %d routes", c.Mode(), c.RouteCount())
	return types.OnPluginStartStatusOK
}

// FlushPeriodMillis is how often the plugin adds its pending counter
// increments to Envoy's counters (proxy_on_tick): one host call per moved
// counter per period instead of per request. Envoy's stats sinks flush
// every 5 s by default.
const FlushPeriodMillis = 1000

// OnTick sends the pending counter increments.
func (p *pluginContext) OnTick() {
	p.flush()
	p.now, p.nowUses = unixNow(), 0
}

// clockReuse is how many outbound requests may share one clock reading
// between ticks.
const clockReuse = 64

// outboundNow is the clock for deciding whether to attach this sidecar's
// own token: at most one tick period or clockReuse requests old. A token a
// second past its expiry is refused by the callee, which verifies exp
// itself; the inbound JWT-SVID check always reads the clock.
func (p *pluginContext) outboundNow() int64 {
	if p.nowUses >= clockReuse || p.now == 0 {
		p.now, p.nowUses = unixNow(), 0
	}
	p.nowUses++
	return p.now
}

// OnPluginDone sends the pending counter increments before the plugin stops.
func (p *pluginContext) OnPluginDone() bool {
	p.flush()
	return true
}

func (p *pluginContext) flush() {
	for i, n := range p.pending {
		if n != 0 {
			p.pending[i] = 0
			p.counters[i].metric.Increment(n)
		}
	}
}

// NewHttpContext implements types.PluginContext.
func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	if n := len(p.free); n > 0 {
		h := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return h
	}
	return &httpContext{plugin: p}
}

type httpContext struct {
	types.DefaultHttpContext
	plugin   *pluginContext
	req      filter.Request
	decision filter.Decision
}

// OnHttpStreamDone returns the context to the plugin's free list: the SDK
// calls nothing on it afterwards.
func (h *httpContext) OnHttpStreamDone() {
	h.req, h.decision = filter.Request{}, filter.Decision{}
	if len(h.plugin.free) < maxFree {
		h.plugin.free = append(h.plugin.free, h)
	}
}

// maxFree bounds the free list (contexts of concurrent requests).
const maxFree = 1024

// OnHttpRequestHeaders decides, then strips and sets headers or answers.
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
	req, d := &h.req, &h.decision
	*req = filter.Request{}
	if c.Inbound() {
		req.PeerURISAN = getProperty(peerURISANPath)
		if req.PeerURISAN == "" && c.NeedsIdentityToken() {
			req.IdentityToken = requestHeader(filter.HeaderIdentity)
		}
		if c.NeedsRequestLine() {
			req.Method, req.Path = requestHeader(":method"), requestHeader(":path")
		}
		if c.NeedsClock(req) {
			req.Now = unixNow()
		}
		c.Decide(req, d)
	} else {
		req.Destination = getProperty(destinationPath)
		if c.NeedsClock(req) {
			req.Now = h.plugin.outboundNow()
		}
		c.Decide(req, d)
		if d.Status != 0 {
			// No route for the address: the authority decides.
			req.Authority = requestHeader(":authority")
			c.Decide(req, d)
		}
	}
	for i, ctr := range h.plugin.counters {
		if d.Events&ctr.bit != 0 {
			h.plugin.pending[i]++
		}
	}
	if d.Status != 0 {
		if err := sdk.SendHttpResponse(uint32(d.Status), textPlain(), []byte(d.Body), -1); err != nil {
			sdk.LogErrorf("ecsmesh: filter: sending local reply: %v", err)
		}
		return types.ActionPause
	}
	for _, name := range c.StripNames() {
		if d.Sets(name) {
			continue // replaced below: Envoy's replace removes every value
		}
		if err := removeRequestHeader(name); err != nil {
			panic(fmt.Sprintf("removing header %s: %v", name, err))
		}
	}
	for _, hd := range d.Headers() {
		if err := setRequestHeader(hd.Name, hd.Value); err != nil {
			panic(fmt.Sprintf("setting header %s: %v", hd.Name, err))
		}
	}
	return types.ActionContinue
}

func textPlain() [][2]string {
	return [][2]string{{"content-type", "text/plain; charset=utf-8"}}
}
