package proxyhost

import (
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// Action is what a plugin's HTTP callback returned.
type Action uint32

// Actions, as in the proxy-wasm ABI.
const (
	Continue Action = 0
	Pause    Action = 1
)

// String returns "continue" or "pause".
func (a Action) String() string {
	switch a {
	case Continue:
		return "continue"
	case Pause:
		return "pause"
	}
	return fmt.Sprintf("action(%d)", uint32(a))
}

// LocalResponse is a reply the plugin sent instead of forwarding the request.
type LocalResponse struct {
	StatusCode uint32
	Details    string
	Body       []byte
	Headers    [][2]string
	GRPCStatus int32
}

// HTTPContext is one HTTP stream in a VM. Contexts are recycled: do not use
// one after Done.
type HTTPContext struct {
	vm   *VM
	id   uint32
	live bool

	reqHeaders, reqTrailers, respHeaders, respTrailers headerMap
	reqBody, respBody                                  []byte

	local        *LocalResponse
	continued    [2]bool // proxy_continue_stream per stream type (request, response)
	closedStream [2]bool
}

// NewHTTPContext creates an HTTP context (proxy_on_context_create).
func (vm *VM) NewHTTPContext() (*HTTPContext, error) {
	var h *HTTPContext
	if n := len(vm.free); n > 0 {
		h = vm.free[n-1]
		vm.free = vm.free[:n-1]
	} else {
		h = &HTTPContext{vm: vm}
	}
	h.id = vm.newID()
	h.live = true
	h.reqHeaders.reset()
	h.reqTrailers.reset()
	h.respHeaders.reset()
	h.respTrailers.reset()
	h.reqBody, h.respBody = h.reqBody[:0], h.respBody[:0]
	h.local = nil
	h.continued, h.closedStream = [2]bool{}, [2]bool{}
	vm.contexts[h.id] = h
	vm.cur = h
	if _, err := vm.call(vm.exports.contextCreate, uint64(h.id), uint64(vm.rootID)); err != nil {
		return nil, fmt.Errorf("proxyhost: proxy_on_context_create: %w", err)
	}
	return h, nil
}

// ID is the context id the plugin sees.
func (h *HTTPContext) ID() uint32 { return h.id }

// OnRequestHeaders sets the request headers and runs proxy_on_request_headers.
func (h *HTTPContext) OnRequestHeaders(headers [][2]string, endOfStream bool) (Action, error) {
	h.reqHeaders.load(headers)
	return h.run("proxy_on_request_headers", h.vm.exports.reqHeaders, uint64(len(headers)), endOfStream)
}

// OnRequestBody appends body to the request body and runs proxy_on_request_body.
func (h *HTTPContext) OnRequestBody(body []byte, endOfStream bool) (Action, error) {
	h.reqBody = append(h.reqBody, body...)
	return h.run("proxy_on_request_body", h.vm.exports.reqBody, uint64(len(h.reqBody)), endOfStream)
}

// OnRequestTrailers sets the request trailers and runs proxy_on_request_trailers.
func (h *HTTPContext) OnRequestTrailers(trailers [][2]string) (Action, error) {
	h.reqTrailers.load(trailers)
	return h.runNoEOS("proxy_on_request_trailers", h.vm.exports.reqTrailers, uint64(len(trailers)))
}

// OnResponseHeaders sets the response headers and runs proxy_on_response_headers.
func (h *HTTPContext) OnResponseHeaders(headers [][2]string, endOfStream bool) (Action, error) {
	h.respHeaders.load(headers)
	return h.run("proxy_on_response_headers", h.vm.exports.respHeaders, uint64(len(headers)), endOfStream)
}

// OnResponseBody appends body to the response body and runs proxy_on_response_body.
func (h *HTTPContext) OnResponseBody(body []byte, endOfStream bool) (Action, error) {
	h.respBody = append(h.respBody, body...)
	return h.run("proxy_on_response_body", h.vm.exports.respBody, uint64(len(h.respBody)), endOfStream)
}

// OnResponseTrailers sets the response trailers and runs proxy_on_response_trailers.
func (h *HTTPContext) OnResponseTrailers(trailers [][2]string) (Action, error) {
	h.respTrailers.load(trailers)
	return h.runNoEOS("proxy_on_response_trailers", h.vm.exports.respTrailers, uint64(len(trailers)))
}

func (h *HTTPContext) run(name string, f api.Function, size uint64, eos bool) (Action, error) {
	var e uint64
	if eos {
		e = 1
	}
	if err := h.enter(); err != nil {
		return Continue, err
	}
	r, err := h.vm.call(f, uint64(h.id), size, e)
	if err != nil {
		return Continue, fmt.Errorf("proxyhost: %s: %w", name, err)
	}
	return Action(r), nil
}

func (h *HTTPContext) runNoEOS(name string, f api.Function, size uint64) (Action, error) {
	if err := h.enter(); err != nil {
		return Continue, err
	}
	r, err := h.vm.call(f, uint64(h.id), size)
	if err != nil {
		return Continue, fmt.Errorf("proxyhost: %s: %w", name, err)
	}
	return Action(r), nil
}

func (h *HTTPContext) enter() error {
	if !h.live {
		return fmt.Errorf("proxyhost: HTTP context %d used after Done", h.id)
	}
	h.vm.cur = h
	return nil
}

// RequestHeaders returns a copy of the current request headers.
func (h *HTTPContext) RequestHeaders() [][2]string { return h.reqHeaders.pairs() }

// RequestHeader returns the first value of a request header.
func (h *HTTPContext) RequestHeader(name string) (string, bool) {
	v, ok := h.reqHeaders.get(appendLower(nil, name))
	return string(v), ok
}

// ResponseHeaders returns a copy of the current response headers.
func (h *HTTPContext) ResponseHeaders() [][2]string { return h.respHeaders.pairs() }

// RequestBody returns the current request body (valid until the next call).
func (h *HTTPContext) RequestBody() []byte { return h.reqBody }

// ResponseBody returns the current response body (valid until the next call).
func (h *HTTPContext) ResponseBody() []byte { return h.respBody }

// LocalResponse returns the local reply the plugin sent, nil if none.
func (h *HTTPContext) LocalResponse() *LocalResponse { return h.local }

// Continued reports whether the plugin resumed the request (false) or
// response (true) stream with proxy_continue_stream.
func (h *HTTPContext) Continued(response bool) bool {
	if response {
		return h.continued[1]
	}
	return h.continued[0]
}

// Done ends the stream as Envoy does: proxy_on_done, proxy_on_log, then
// proxy_on_delete. The context is recycled.
func (h *HTTPContext) Done() error {
	if err := h.enter(); err != nil {
		return err
	}
	vm := h.vm
	id := uint64(h.id)
	var err error
	if _, err = vm.call(vm.exports.done, id); err == nil {
		if _, err = vm.call(vm.exports.log, id); err == nil {
			_, err = vm.call(vm.exports.delete, id)
		}
	}
	h.live = false
	vm.cur = nil
	delete(vm.contexts, h.id)
	vm.free = append(vm.free, h)
	if err != nil {
		return fmt.Errorf("proxyhost: ending HTTP context %d: %w", h.id, err)
	}
	return nil
}
