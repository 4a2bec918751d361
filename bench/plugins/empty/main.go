// Command empty is the empty proxy-wasm plugin: its HTTP context is the SDK's
// default one, which does nothing per request, so its cost is the floor of
// the proxy-wasm ABI and the SDK's dispatch. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o empty.wasm ./bench/plugins/empty
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
func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
