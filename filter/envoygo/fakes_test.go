package envoygo

import (
	"strings"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// fakeHeaders is an ordered request header map. Unimplemented methods of
// the embedded interface panic, which the tests would see.
type fakeHeaders struct {
	api.RequestHeaderMap
	list [][2]string
}

func (h *fakeHeaders) Get(key string) (string, bool) {
	key = strings.ToLower(key)
	for _, kv := range h.list {
		if kv[0] == key {
			return kv[1], true
		}
	}
	return "", false
}

func (h *fakeHeaders) Host() string { v, _ := h.Get(":authority"); return v }

func (h *fakeHeaders) Method() string { v, _ := h.Get(":method"); return v }

func (h *fakeHeaders) Path() string { v, _ := h.Get(":path"); return v }

func (h *fakeHeaders) Set(key, value string) {
	h.Del(key)
	h.list = append(h.list, [2]string{strings.ToLower(key), value})
}

func (h *fakeHeaders) Del(key string) {
	key = strings.ToLower(key)
	out := h.list[:0]
	for _, kv := range h.list {
		if kv[0] != key {
			out = append(out, kv)
		}
	}
	h.list = out
}

func (h *fakeHeaders) Range(f func(key, value string) bool) {
	for _, kv := range h.list {
		if !f(kv[0], kv[1]) {
			return
		}
	}
}

type localReply struct {
	status  int
	body    string
	headers map[string][]string
	details string
}

// fakeCallbacks records what the filter asks of Envoy.
type fakeCallbacks struct {
	api.FilterCallbackHandler
	props       map[string]string
	reply       *localReply
	routeClears int
	logs        []string
}

func (c *fakeCallbacks) GetProperty(key string) (string, error) {
	if v, ok := c.props[key]; ok {
		return v, nil
	}
	return "", api.ErrValueNotFound
}

func (c *fakeCallbacks) ClearRouteCache()                                   { c.routeClears++ }
func (c *fakeCallbacks) Log(_ api.LogType, msg string)                      { c.logs = append(c.logs, msg) }
func (c *fakeCallbacks) DecoderFilterCallbacks() api.DecoderFilterCallbacks { return fakeDecoder{c} }

type fakeDecoder struct{ c *fakeCallbacks }

func (d fakeDecoder) Continue(api.StatusType) {}
func (d fakeDecoder) SendLocalReply(status int, body string, headers map[string][]string, _ int64, details string) {
	d.c.reply = &localReply{status: status, body: body, headers: headers, details: details}
}
func (d fakeDecoder) RecoverPanic()        {}
func (d fakeDecoder) AddData([]byte, bool) {}
func (d fakeDecoder) InjectData([]byte)    {}

// SetUpstreamOverrideHost (Envoy 1.39 API) is never called by the filter.
func (d fakeDecoder) SetUpstreamOverrideHost(string, bool) error {
	panic("envoygo: unexpected SetUpstreamOverrideHost")
}

// fakeConfigCallbacks counts metrics.
type fakeConfigCallbacks struct {
	counters map[string]*fakeCounter
}

func (f *fakeConfigCallbacks) DefineCounterMetric(name string) api.CounterMetric {
	if f.counters == nil {
		f.counters = map[string]*fakeCounter{}
	}
	c := &fakeCounter{}
	f.counters[name] = c
	return c
}

func (f *fakeConfigCallbacks) DefineGaugeMetric(string) api.GaugeMetric { return &fakeCounter{} }

type fakeCounter struct{ v uint64 }

func (c *fakeCounter) Increment(n int64) { c.v += uint64(n) }
func (c *fakeCounter) Get() uint64       { return c.v }
func (c *fakeCounter) Record(v uint64)   { c.v = v }
