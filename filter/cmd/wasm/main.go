// Command wasm is the ecsmesh filter as a proxy-wasm plugin. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/ecsmesh-filter.wasm ./filter/cmd/wasm
package main

import (
	"github.com/ecsmesh/ecsmesh/filter/proxywasm"
	sdk "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// init registers the plugin: the proxy-wasm host calls into the module
// after initialization, never main.
func init() { sdk.SetVMContext(proxywasm.NewVMContext()) }

func main() {}
