package devdemo

import (
	"context"
	"fmt"
	"os"

	"github.com/ecsmesh/ecsmesh/bench/proxyhost"
	"github.com/ecsmesh/ecsmesh/filter"
)

// Reply is what the filter did with one request.
type Reply struct {
	// Status is the local reply's status, 0 when the request continues.
	Status int
	Body   string
	// Headers are the request headers after the filter.
	Headers map[string]string
}

// Filter is the built .wasm under wazero (the bench host) running one
// filter configuration the CP delivered, for many requests.
type Filter struct {
	rt *proxyhost.Runtime
	vm *proxyhost.VM
}

// NewFilter compiles wasmFile and starts a VM with config and the stream
// properties props (the same for every request).
func NewFilter(ctx context.Context, wasmFile, config string, props map[string]string) (_ *Filter, err error) {
	wasm, err := os.ReadFile(wasmFile)
	if err != nil {
		return nil, fmt.Errorf("devdemo: reading %s (run make build): %w", wasmFile, err)
	}
	rt, err := proxyhost.NewRuntime(ctx, proxyhost.Options{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			rt.Close(ctx)
		}
	}()
	plugin, err := rt.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	p := map[string][]byte{}
	for k, v := range props {
		p[k] = []byte(v)
	}
	vm, err := plugin.NewVM(ctx, proxyhost.VMConfig{PluginConfig: []byte(config), Properties: p})
	if err != nil {
		return nil, err
	}
	return &Filter{rt: rt, vm: vm}, nil
}

// Request runs one request's headers through the filter.
func (f *Filter) Request(headers [][2]string) (*Reply, error) {
	h, err := f.vm.NewHTTPContext()
	if err != nil {
		return nil, err
	}
	if _, err := h.OnRequestHeaders(headers, true); err != nil {
		return nil, err
	}
	r := &Reply{Headers: map[string]string{}}
	if lr := h.LocalResponse(); lr != nil {
		r.Status, r.Body = int(lr.StatusCode), string(lr.Body)
	}
	for _, kv := range h.RequestHeaders() {
		r.Headers[kv[0]] = kv[1]
	}
	return r, h.Done()
}

// Close stops the VM and the runtime.
func (f *Filter) Close(ctx context.Context) {
	_ = f.vm.Close()
	_ = f.rt.Close(ctx)
}

// FilterRun runs one request through a new Filter.
func FilterRun(ctx context.Context, wasmFile, config string, props map[string]string, headers [][2]string) (*Reply, error) {
	f, err := NewFilter(ctx, wasmFile, config, props)
	if err != nil {
		return nil, err
	}
	defer f.Close(ctx)
	return f.Request(headers)
}

// Outbound sends "GET http://<authority>/" dialed at dest from a sidecar
// with outbound filter config.
func Outbound(ctx context.Context, wasmFile, config, dest, authority string) (*Reply, error) {
	return FilterRun(ctx, wasmFile, config, map[string]string{filter.PropertyDestination: dest},
		[][2]string{{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", authority},
			// An app trying to spoof its identity: the filter strips it.
			{filter.HeaderPeerID, "spiffe://default.mesh.local/workload/admin"}})
}

// Inbound delivers "GET /" from a peer with the given mTLS SPIFFE ID to a
// sidecar with inbound filter config.
func Inbound(ctx context.Context, wasmFile, config, peerID, authority string) (*Reply, error) {
	return InboundRequest(ctx, wasmFile, config, peerID, authority, "GET", "/")
}

// InboundRequest delivers one request (method, path) from a peer with the
// given mTLS SPIFFE ID to a sidecar with inbound filter config.
func InboundRequest(ctx context.Context, wasmFile, config, peerID, authority, method, path string) (*Reply, error) {
	return FilterRun(ctx, wasmFile, config, map[string]string{filter.PropertyPeerURISAN: peerID},
		[][2]string{{":method", method}, {":path", path}, {":scheme", "https"}, {":authority", authority},
			{filter.HeaderPeerID, "spiffe://default.mesh.local/workload/admin"}})
}
