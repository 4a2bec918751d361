// Package proxyhost is a lean proxy-wasm host on wazero, made for
// benchmarking proxy-wasm Go plugins (ABI 0.2.1, the one the Go SDK
// github.com/proxy-wasm/proxy-wasm-go-sdk targets) and for running one request
// through a plugin outside Envoy.
//
// Unlike proxytest's wasm wrapper it registers every host function without
// reflection (api.GoModuleFunc), reuses its buffers (header maps, call stacks,
// the guest allocator's function), shares a wazero compilation cache across
// runtimes, and runs either the compiler or the interpreter engine. It
// implements every host function the SDK imports, so any plugin built with
// the same SDK instantiates and runs, including ones written elsewhere.
//
// The objects nest like Envoy's:
//
//	rt, _ := proxyhost.NewRuntime(ctx, proxyhost.Options{CacheDir: dir})  // one wazero runtime
//	p, _ := rt.Compile(ctx, wasm)                                          // one compiled module
//	vm, _ := p.NewVM(ctx, proxyhost.VMConfig{PluginConfig: cfg,            // one instance, started
//		Properties: map[string][]byte{"destination.address": []byte("127.1.0.5:8080")}})
//	h, _ := vm.NewHTTPContext()                                            // one request
//	action, _ := h.OnRequestHeaders([][2]string{{":authority", "redis"}}, true)
//	out := h.RequestHeaders()                                              // or h.LocalResponse()
//	_ = h.Done()                                                           // done, log, delete
//
// A VM and its HTTP contexts are single-threaded, like an Envoy worker's:
// use one VM per goroutine. Runtimes, plugins and distinct VMs are safe to use
// in parallel.
//
// Behaviour follows Envoy where proxytest and Envoy differ: header names are
// lower-cased, replace sets the first value and removes the other values,
// remove removes every value, add appends another value. Outgoing HTTP calls
// are recorded (HTTPCalls) but never answered.
package proxyhost
