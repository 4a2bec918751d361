//go:build wasip1

// Command floor is the floor of the ecsmesh filter: a proxy-wasm plugin that
// does exactly the host I/O the filter's decision cannot avoid on a request
// it lets through, and nothing else: no decision, no counter, no clock. Its
// plugin configuration names the mode:
//
//   - "outbound": read destination.address, remove x-ecsmesh-peer-id, set
//     x-ecsmesh-cluster and x-ecsmesh-identity (the filter's bench routes
//     attach a token);
//   - "inbound": read connection.uri_san_peer_certificate, remove
//     x-ecsmesh-cluster and x-ecsmesh-identity, set x-ecsmesh-peer-id and
//     x-forwarded-client-cert.
//
// A header that is set needs no removal: the host's replace removes every
// value, as Envoy's does.
//
// It uses the same direct host calls as the filter (filter/proxywasm) and
// the same SDK dispatch. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o floor.wasm ./bench/plugins/floor
package main

import (
	"unsafe"

	sdk "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

//go:wasmimport env proxy_get_property
func hostGetProperty(pathData *byte, pathSize int32, returnValueData unsafe.Pointer, returnValueSize *int32) uint32

//go:wasmimport env proxy_replace_header_map_value
func hostReplaceHeaderMapValue(mapType uint32, keyData *byte, keySize int32, valueData *byte, valueSize int32) uint32

//go:wasmimport env proxy_remove_header_map_value
func hostRemoveHeaderMapValue(mapType uint32, keyData *byte, keySize int32) uint32

// init registers the plugin; the host never calls main.
func init() { sdk.SetVMContext(&vmContext{}) }

func main() {}

type vmContext struct{ types.DefaultVMContext }

// NewPluginContext implements types.VMContext.
func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	inbound bool
	free    []*httpContext
}

// OnPluginStart reads the mode.
func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := sdk.GetPluginConfiguration()
	if err != nil || (string(cfg) != "outbound" && string(cfg) != "inbound") {
		sdk.LogErrorf("floor: the configuration must be outbound or inbound, not %q", cfg)
		return types.OnPluginStartStatusFailed
	}
	p.inbound = string(cfg) == "inbound"
	return types.OnPluginStartStatusOK
}

// NewHttpContext implements types.PluginContext, reusing finished contexts
// as the filter does.
func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	if n := len(p.free); n > 0 {
		h := p.free[n-1]
		p.free = p.free[:n-1]
		return h
	}
	return &httpContext{plugin: p}
}

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
	xfcc   []byte
}

// OnHttpStreamDone implements types.HttpContext.
func (h *httpContext) OnHttpStreamDone() {
	if len(h.plugin.free) < 1024 {
		h.plugin.free = append(h.plugin.free, h)
	}
}

var (
	destination = []byte("destination\x00address")
	peerURISAN  = []byte("connection\x00uri_san_peer_certificate")
	token       = "e30.eyJleHAiOjQxMDI0NDQ4MDB9.AA"
	outStrip    = []string{"x-ecsmesh-peer-id"}
	inStrip     = []string{"x-ecsmesh-cluster", "x-ecsmesh-identity"}
)

// OnHttpRequestHeaders implements types.HttpContext.
func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if h.plugin.inbound {
		id := property(peerURISAN)
		for _, n := range inStrip {
			remove(n)
		}
		h.xfcc = append(append(h.xfcc[:0], "URI="...), id...)
		replace("x-ecsmesh-peer-id", id)
		replace("x-forwarded-client-cert", unsafe.String(unsafe.SliceData(h.xfcc), len(h.xfcc)))
		return types.ActionContinue
	}
	dest := property(destination)
	for _, n := range outStrip {
		remove(n)
	}
	// The filter's cluster is a string it already holds; the floor sets a
	// value of the same kind (the bench's cluster names are this short).
	_ = dest
	replace("x-ecsmesh-cluster", "svc-9")
	replace("x-ecsmesh-identity", token)
	return types.ActionContinue
}

func property(path []byte) string {
	var data *byte
	var size int32
	if hostGetProperty(&path[0], int32(len(path)), unsafe.Pointer(&data), &size) != 0 || data == nil {
		return ""
	}
	return unsafe.String(data, size)
}

func remove(name string) {
	hostRemoveHeaderMapValue(0, unsafe.StringData(name), int32(len(name)))
}

func replace(name, value string) {
	hostReplaceHeaderMapValue(0, unsafe.StringData(name), int32(len(name)), unsafe.StringData(value), int32(len(value)))
}
