//go:build !wasip1

package proxywasm

import (
	"errors"
	"time"

	sdk "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// Outside Wasm (the SDK's proxytest runs the plugin natively) the host
// functions are the SDK's.

func getProperty(p *propertyPath) string {
	b, err := sdk.GetProperty(p.path)
	if err != nil {
		return ""
	}
	return string(b)
}

func requestHeader(name string) string {
	v, err := sdk.GetHttpRequestHeader(name)
	if err != nil {
		return ""
	}
	return v
}

func removeRequestHeader(name string) error {
	if err := sdk.RemoveHttpRequestHeader(name); err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		return err
	}
	return nil
}

func setRequestHeader(name, value string) error { return sdk.ReplaceHttpRequestHeader(name, value) }

func unixNow() int64 { return time.Now().Unix() }
