// Command oneheader is a proxy-wasm plugin that sets one request header
// (x-bench: 1) and does nothing else: one host call per request on top of
// the empty plugin. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o oneheader.wasm ./bench/plugins/oneheader
package main

import (
	sdk "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// init registers the plugin; the host never calls main.
func init() { sdk.SetVMContext(&vmContext{}) }

func main() {}

type vmContext struct{ types.DefaultVMContext }

// NewPluginContext implements types.VMContext.
func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

// NewHttpContext implements types.PluginContext.
func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

// OnHttpRequestHeaders implements types.HttpContext.
func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if err := sdk.ReplaceHttpRequestHeader("x-bench", "1"); err != nil {
		sdk.LogErrorf("oneheader: setting x-bench: %v", err)
	}
	return types.ActionContinue
}
