//go:build wasip1

package proxywasm

import (
	"time"
	"unsafe"
)

// The proxy-wasm host functions the request path calls, imported directly
// rather than through the SDK's helpers: the property path is serialized
// once (not on every call) and a value the host copies into the guest is
// viewed in place, never copied again. The SDK imports the same functions;
// a Wasm module may import one function twice.

//go:wasmimport env proxy_get_property
func hostGetProperty(pathData *byte, pathSize int32, returnValueData unsafe.Pointer, returnValueSize *int32) uint32

//go:wasmimport env proxy_get_header_map_value
func hostGetHeaderMapValue(mapType uint32, keyData *byte, keySize int32, returnValueData unsafe.Pointer, returnValueSize *int32) uint32

//go:wasmimport env proxy_replace_header_map_value
func hostReplaceHeaderMapValue(mapType uint32, keyData *byte, keySize int32, valueData *byte, valueSize int32) uint32

//go:wasmimport env proxy_remove_header_map_value
func hostRemoveHeaderMapValue(mapType uint32, keyData *byte, keySize int32) uint32

//go:wasmimport wasi_snapshot_preview1 clock_time_get
func clockTimeGet(clockID uint32, precision uint64, timestamp *uint64) uint32

// unixNow is the wall clock in Unix seconds: one WASI call, where
// time.Now reads both the wall and the monotonic clock.
func unixNow() int64 {
	var ns uint64
	if clockTimeGet(0 /* realtime */, uint64(time.Second), &ns) != 0 {
		return time.Now().Unix()
	}
	return int64(ns / uint64(time.Second))
}

const (
	statusOK          = 0
	statusNotFound    = 1
	mapRequestHeaders = 0
)

// hostError is a proxy-wasm status other than OK.
type hostError uint32

func (e hostError) Error() string { return "proxy-wasm host status " + itoa(uint32(e)) }

func itoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// getProperty returns the property at a serialized path (see propertyPath),
// "" when the host has none. The string views the buffer the host
// allocated in the guest for this call.
func getProperty(p *propertyPath) string {
	var data *byte
	var size int32
	if hostGetProperty(&p.serialized[0], int32(len(p.serialized)), unsafe.Pointer(&data), &size) != statusOK || data == nil || size <= 0 {
		return ""
	}
	return unsafe.String(data, size)
}

// requestHeader returns the first value of a request header, "" when absent.
func requestHeader(name string) string {
	var data *byte
	var size int32
	if hostGetHeaderMapValue(mapRequestHeaders, unsafe.StringData(name), int32(len(name)), unsafe.Pointer(&data), &size) != statusOK || data == nil || size <= 0 {
		return ""
	}
	return unsafe.String(data, size)
}

// removeRequestHeader removes every value of a request header.
func removeRequestHeader(name string) error {
	if st := hostRemoveHeaderMapValue(mapRequestHeaders, unsafe.StringData(name), int32(len(name))); st != statusOK && st != statusNotFound {
		return hostError(st)
	}
	return nil
}

// setRequestHeader replaces every value of a request header with one.
func setRequestHeader(name, value string) error {
	vp := unsafe.StringData(value)
	if len(value) == 0 {
		vp = nil
	}
	if st := hostReplaceHeaderMapValue(mapRequestHeaders, unsafe.StringData(name), int32(len(name)), vp, int32(len(value))); st != statusOK {
		return hostError(st)
	}
	return nil
}
