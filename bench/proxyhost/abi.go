package proxyhost

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// status is a proxy-wasm call result.
type status uint32

const (
	statusOK            status = 0
	statusNotFound      status = 1
	statusBadArgument   status = 2
	statusEmpty         status = 7
	statusCasMismatch   status = 8
	statusInternalError status = 10
)

// hostFunc is one proxy-wasm host function: fn reads its arguments from the
// wazero stack and returns the call result.
type hostFunc struct {
	name   string
	params int // number of parameters; all i32 except where i64 lists them
	i64    []int
	fn     func(vm *VM, s []uint64) status
}

// numHostFuncs is len(hostFuncTable()).
const numHostFuncs = 29

// hostFuncTable lists every host function the Go SDK imports from "env".
func hostFuncTable() [numHostFuncs]hostFunc {
	return [numHostFuncs]hostFunc{
		{name: "proxy_log", params: 3, fn: (*VM).proxyLog},
		{name: "proxy_send_local_response", params: 8, fn: (*VM).sendLocalResponse},
		{name: "proxy_get_shared_data", params: 5, fn: (*VM).getSharedData},
		{name: "proxy_set_shared_data", params: 5, fn: (*VM).setSharedData},
		{name: "proxy_register_shared_queue", params: 3, fn: (*VM).registerSharedQueue},
		{name: "proxy_resolve_shared_queue", params: 5, fn: (*VM).resolveSharedQueue},
		{name: "proxy_dequeue_shared_queue", params: 3, fn: (*VM).dequeueSharedQueue},
		{name: "proxy_enqueue_shared_queue", params: 3, fn: (*VM).enqueueSharedQueue},
		{name: "proxy_get_header_map_value", params: 5, fn: (*VM).getHeaderMapValue},
		{name: "proxy_add_header_map_value", params: 5, fn: (*VM).addHeaderMapValue},
		{name: "proxy_replace_header_map_value", params: 5, fn: (*VM).replaceHeaderMapValue},
		{name: "proxy_remove_header_map_value", params: 3, fn: (*VM).removeHeaderMapValue},
		{name: "proxy_get_header_map_pairs", params: 3, fn: (*VM).getHeaderMapPairs},
		{name: "proxy_set_header_map_pairs", params: 3, fn: (*VM).setHeaderMapPairs},
		{name: "proxy_get_buffer_bytes", params: 5, fn: (*VM).getBufferBytes},
		{name: "proxy_set_buffer_bytes", params: 5, fn: (*VM).setBufferBytes},
		{name: "proxy_continue_stream", params: 1, fn: (*VM).continueStream},
		{name: "proxy_close_stream", params: 1, fn: (*VM).closeStream},
		{name: "proxy_http_call", params: 10, fn: (*VM).httpCall},
		{name: "proxy_call_foreign_function", params: 6, fn: (*VM).callForeignFunction},
		{name: "proxy_set_tick_period_milliseconds", params: 1, fn: (*VM).setTickPeriod},
		{name: "proxy_set_effective_context", params: 1, fn: (*VM).setEffectiveContext},
		{name: "proxy_done", params: 0, fn: (*VM).proxyDone},
		{name: "proxy_define_metric", params: 4, fn: (*VM).defineMetric},
		{name: "proxy_increment_metric", params: 2, i64: []int{1}, fn: (*VM).incrementMetric},
		{name: "proxy_record_metric", params: 2, i64: []int{1}, fn: (*VM).recordMetric},
		{name: "proxy_get_metric", params: 2, fn: (*VM).getMetric},
		{name: "proxy_get_property", params: 4, fn: (*VM).getProperty},
		{name: "proxy_set_property", params: 4, fn: (*VM).setProperty},
	}
}

// instantiateEnv registers the host functions as module "env". Each one finds
// its VM in the call's context (VM.ctx), counts the call and runs.
func instantiateEnv(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("env")
	results := []api.ValueType{api.ValueTypeI32}
	for i, f := range hostFuncTable() {
		params := make([]api.ValueType, f.params)
		for j := range params {
			params[j] = api.ValueTypeI32
		}
		for _, j := range f.i64 {
			params[j] = api.ValueTypeI64
		}
		fn := f.fn
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
				vm, ok := ctx.Value(vmKey{}).(*VM)
				if !ok {
					stack[0] = uint64(statusInternalError)
					return
				}
				vm.calls[i]++
				stack[0] = uint64(fn(vm, stack))
			}), params, results).
			WithName(f.name).
			Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// read returns a view of guest memory (nil for size 0).
func (vm *VM) read(ptr, size uint64) ([]byte, bool) {
	if uint32(size) == 0 {
		return nil, true
	}
	return vm.mem.Read(uint32(ptr), uint32(size))
}

// readKey returns a lower-cased copy of a guest header name in a reused buffer.
func (vm *VM) readKey(ptr, size uint64) ([]byte, bool) {
	b, ok := vm.read(ptr, size)
	if !ok {
		return nil, false
	}
	vm.keyBuf = appendLowerBytes(vm.keyBuf[:0], b)
	return vm.keyBuf, true
}

// allocGuest allocates n bytes in the guest (proxy_on_memory_allocate) and
// returns their address and a view of them.
func (vm *VM) allocGuest(n int) (uint32, []byte, bool) {
	vm.copies++
	vm.alloc[0] = uint64(n)
	if err := vm.exports.alloc.CallWithStack(vm.ctx, vm.alloc); err != nil {
		return 0, nil, false
	}
	ptr := uint32(vm.alloc[0])
	// Read after the call: the allocation may have grown the memory.
	buf, ok := vm.mem.Read(ptr, uint32(n))
	return ptr, buf, ok
}

// copyOut copies data into a guest allocation and stores its address and size
// at retPtr and retSize.
func (vm *VM) copyOut(data []byte, retPtr, retSize uint64) status {
	if len(data) == 0 {
		if !vm.mem.WriteUint32Le(uint32(retPtr), 0) || !vm.mem.WriteUint32Le(uint32(retSize), 0) {
			return statusBadArgument
		}
		return statusOK
	}
	ptr, buf, ok := vm.allocGuest(len(data))
	if !ok {
		return statusInternalError
	}
	copy(buf, data)
	return vm.putPtrSize(ptr, len(data), retPtr, retSize)
}

func (vm *VM) putPtrSize(ptr uint32, n int, retPtr, retSize uint64) status {
	if !vm.mem.WriteUint32Le(uint32(retPtr), ptr) || !vm.mem.WriteUint32Le(uint32(retSize), uint32(n)) {
		return statusBadArgument
	}
	return statusOK
}

// headerMap returns the map of a proxy-wasm map type in the current context.
func (vm *VM) headerMap(mapType uint64) *headerMap {
	switch uint32(mapType) {
	case 6, 7: // HTTP call response headers and trailers: never delivered
		vm.callResp.reset()
		return &vm.callResp
	}
	h := vm.cur
	if h == nil {
		return nil
	}
	switch uint32(mapType) {
	case 0:
		return &h.reqHeaders
	case 1:
		return &h.reqTrailers
	case 2:
		return &h.respHeaders
	case 3:
		return &h.respTrailers
	}
	return nil
}
