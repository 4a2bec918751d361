package proxyhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// LogLevel is a proxy-wasm log level.
type LogLevel uint32

// Log levels, as in the proxy-wasm ABI.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

// String returns the level's name.
func (l LogLevel) String() string {
	names := [...]string{"trace", "debug", "info", "warn", "error", "critical"}
	if int(l) < len(names) {
		return names[l]
	}
	return fmt.Sprintf("level(%d)", uint32(l))
}

// LogEntry is one line the plugin logged.
type LogEntry struct {
	Level   LogLevel
	Message string
}

// maxLogs bounds the log lines a VM keeps.
const maxLogs = 1000

// VMConfig configures one VM and its plugin (root) context.
type VMConfig struct {
	// PluginConfig is the plugin configuration (Envoy's `configuration`).
	PluginConfig []byte
	// VMConfig is the VM configuration (Envoy's `vm_config.configuration`).
	VMConfig []byte
	// Properties answer proxy_get_property. Keys are dotted paths
	// ("destination.address", "connection.uri_san_peer_certificate"); a key
	// containing a NUL byte is taken as the ABI's NUL-separated path as is.
	// The plugin's proxy_set_property writes here too (on the VM's own copy).
	Properties map[string][]byte
	// LogLevel drops plugin log lines below it without copying them (they are
	// still counted); the zero value keeps every line.
	LogLevel LogLevel
	// Stdout receives what the guest writes to WASI stdout and stderr
	// (the Go runtime's own messages); nil discards it.
	Stdout io.Writer
}

// StartError reports a VM whose plugin refused to start (proxy_on_vm_start or
// proxy_on_configure returned false). Logs are its log lines.
type StartError struct {
	Phase string
	Logs  []LogEntry
}

// Error implements error.
func (e *StartError) Error() string {
	var msgs []string
	for _, l := range e.Logs {
		if l.Level >= LogWarn {
			msgs = append(msgs, l.Message)
		}
	}
	return fmt.Sprintf("proxyhost: plugin refused to start (%s): %s", e.Phase, strings.Join(msgs, "; "))
}

// HTTPCall is an outgoing call a plugin dispatched (never answered).
type HTTPCall struct {
	Upstream string
	Headers  [][2]string
	Body     []byte
	Timeout  uint32
}

// Metric is one metric a plugin defined.
type Metric struct {
	Name  string
	Type  uint32 // 0 counter, 1 gauge, 2 histogram
	Value uint64
}

// VM is one instance of a plugin with its plugin (root) context started.
type VM struct {
	ctx     context.Context
	mod     api.Module
	mem     api.Memory
	shared  *sharedState
	props   map[string][]byte
	cfg     VMConfig
	exports exports
	stack   []uint64 // for calls into the guest from the VM's methods
	alloc   []uint64 // for proxy_on_memory_allocate calls from host functions

	rootID, nextID uint32
	cur            *HTTPContext // the context the guest is running in; nil = root
	contexts       map[uint32]*HTTPContext
	free           []*HTTPContext

	metrics   []Metric
	metricIDs map[string]uint32
	logs      []LogEntry
	logCounts [LogCritical + 1]uint64
	calls     [numHostFuncs]uint64
	copies    uint64

	tickPeriod uint32
	httpCalls  []HTTPCall
	doneCalled bool
	keyBuf     []byte
	callResp   headerMap // empty: HTTP call responses are never delivered
}

type vmKey struct{}

// NewVM instantiates the plugin, then runs proxy_on_vm_start, creates the
// plugin context and runs proxy_on_configure. A refused start is a
// *StartError.
func (p *Plugin) NewVM(ctx context.Context, cfg VMConfig) (*VM, error) {
	vm := &VM{
		shared:    &p.rt.shared,
		cfg:       cfg,
		props:     make(map[string][]byte, len(cfg.Properties)),
		stack:     make([]uint64, 8),
		alloc:     make([]uint64, 1),
		contexts:  map[uint32]*HTTPContext{},
		metricIDs: map[string]uint32{},
	}
	for k, v := range cfg.Properties {
		if !strings.ContainsRune(k, 0) {
			k = strings.ReplaceAll(k, ".", "\x00")
		}
		vm.props[k] = v
	}
	vm.ctx = context.WithValue(ctx, vmKey{}, vm)
	out := cfg.Stdout
	if out == nil {
		out = io.Discard
	}
	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous: one compiled module, many instances
		WithStartFunctions("_initialize", "_start").
		WithStdout(out).WithStderr(out).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader)
	mod, err := p.rt.rt.InstantiateModule(vm.ctx, p.mod, mc)
	if err != nil {
		return nil, fmt.Errorf("proxyhost: instantiating the module: %w", err)
	}
	vm.mod, vm.mem = mod, mod.Memory()
	if err := vm.exports.load(mod); err != nil {
		mod.Close(ctx)
		return nil, err
	}
	if err := vm.start(); err != nil {
		mod.Close(ctx)
		return nil, err
	}
	return vm, nil
}

func (vm *VM) start() error {
	vm.nextID = 1
	vm.rootID = vm.newID()
	ok, err := vm.callBool(vm.exports.vmStart, vm.rootID, uint64(len(vm.cfg.VMConfig)))
	if err != nil {
		return fmt.Errorf("proxyhost: proxy_on_vm_start: %w", err)
	}
	if !ok {
		return &StartError{Phase: "proxy_on_vm_start", Logs: vm.Logs()}
	}
	if _, err := vm.call(vm.exports.contextCreate, uint64(vm.rootID), 0); err != nil {
		return fmt.Errorf("proxyhost: proxy_on_context_create (plugin): %w", err)
	}
	if ok, err = vm.callBool(vm.exports.configure, vm.rootID, uint64(len(vm.cfg.PluginConfig))); err != nil {
		return fmt.Errorf("proxyhost: proxy_on_configure: %w", err)
	}
	if !ok {
		return &StartError{Phase: "proxy_on_configure", Logs: vm.Logs()}
	}
	return nil
}

func (vm *VM) newID() uint32 {
	id := vm.nextID
	vm.nextID++
	return id
}

// call runs a guest export with up to 3 arguments in the current context.
func (vm *VM) call(f api.Function, args ...uint64) (uint64, error) {
	if f == nil {
		return 0, nil
	}
	n := copy(vm.stack, args)
	if err := f.CallWithStack(vm.ctx, vm.stack[:max(n, 1)]); err != nil {
		return 0, err
	}
	return vm.stack[0], nil
}

func (vm *VM) callBool(f api.Function, id uint32, size uint64) (bool, error) {
	if f == nil {
		return true, nil
	}
	r, err := vm.call(f, uint64(id), size)
	return r != 0, err
}

// SetProperty sets a property for the requests that follow ("a.b" or
// NUL-separated path); an empty value removes it, as when Envoy has none.
func (vm *VM) SetProperty(path string, value []byte) {
	if !strings.ContainsRune(path, 0) {
		path = strings.ReplaceAll(path, ".", "\x00")
	}
	if len(value) == 0 {
		delete(vm.props, path)
		return
	}
	vm.props[path] = append(vm.props[path][:0], value...)
}

// Configure delivers a new plugin configuration to the running plugin
// context (proxy_on_configure), as a configuration update does; a refused
// one is a *StartError and the plugin keeps its previous configuration.
func (vm *VM) Configure(pluginConfig []byte) error {
	vm.cur = nil
	vm.cfg.PluginConfig = pluginConfig
	ok, err := vm.callBool(vm.exports.configure, vm.rootID, uint64(len(pluginConfig)))
	if err != nil {
		return fmt.Errorf("proxyhost: proxy_on_configure: %w", err)
	}
	if !ok {
		return &StartError{Phase: "proxy_on_configure", Logs: vm.Logs()}
	}
	return nil
}

// Close runs proxy_on_done on the plugin context and closes the instance.
func (vm *VM) Close() error {
	vm.cur = nil
	_, err := vm.call(vm.exports.done, uint64(vm.rootID))
	if cerr := vm.mod.Close(vm.ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("proxyhost: closing the VM: %w", err)
	}
	return nil
}

// Tick runs proxy_on_tick on the plugin context.
func (vm *VM) Tick() error {
	vm.cur = nil
	if _, err := vm.call(vm.exports.tick, uint64(vm.rootID)); err != nil {
		return fmt.Errorf("proxyhost: proxy_on_tick: %w", err)
	}
	return nil
}

// TickPeriod is the period the plugin asked for, in milliseconds (0 = none).
func (vm *VM) TickPeriod() uint32 { return vm.tickPeriod }

// Logs returns the log lines kept so far (at most the last 1,000 at or above
// VMConfig.LogLevel).
func (vm *VM) Logs() []LogEntry { return append([]LogEntry(nil), vm.logs...) }

// LogCount returns how many lines the plugin logged at level, kept or not.
func (vm *VM) LogCount(level LogLevel) uint64 {
	if int(level) < len(vm.logCounts) {
		return vm.logCounts[level]
	}
	return 0
}

// Metric returns the value of the metric the plugin defined as name.
func (vm *VM) Metric(name string) (uint64, bool) {
	id, ok := vm.metricIDs[name]
	if !ok {
		return 0, false
	}
	return vm.metrics[id].Value, true
}

// Metrics returns every metric the plugin defined.
func (vm *VM) Metrics() []Metric { return append([]Metric(nil), vm.metrics...) }

// HTTPCalls returns the outgoing calls the plugin dispatched.
func (vm *VM) HTTPCalls() []HTTPCall { return append([]HTTPCall(nil), vm.httpCalls...) }

// MemoryBytes is the size of the guest's linear memory.
func (vm *VM) MemoryBytes() uint64 { return uint64(vm.mem.Size()) }

// HostCalls returns the number of calls to each proxy-wasm host function
// (WASI calls are not counted) since the VM started.
func (vm *VM) HostCalls() map[string]uint64 {
	m := map[string]uint64{}
	table := hostFuncTable()
	for i, n := range vm.calls {
		if n > 0 {
			m[table[i].name] = n
		}
	}
	return m
}

// HostCallCount is the total of HostCalls.
func (vm *VM) HostCallCount() uint64 {
	var t uint64
	for _, n := range vm.calls {
		t += n
	}
	return t
}

// GuestCopies is the number of host-to-guest copies so far (each one a call
// into the guest's proxy_on_memory_allocate).
func (vm *VM) GuestCopies() uint64 { return vm.copies }

// exports are the guest functions the host calls.
type exports struct {
	alloc, vmStart, contextCreate, configure, done, log, delete, tick, queueReady api.Function
	reqHeaders, reqBody, reqTrailers, respHeaders, respBody, respTrailers         api.Function
}

func (e *exports) load(mod api.Module) error {
	get := mod.ExportedFunction
	*e = exports{
		alloc: get("proxy_on_memory_allocate"), vmStart: get("proxy_on_vm_start"),
		contextCreate: get("proxy_on_context_create"), configure: get("proxy_on_configure"),
		done: get("proxy_on_done"), log: get("proxy_on_log"), delete: get("proxy_on_delete"),
		tick: get("proxy_on_tick"), queueReady: get("proxy_on_queue_ready"),
		reqHeaders: get("proxy_on_request_headers"), reqBody: get("proxy_on_request_body"),
		reqTrailers: get("proxy_on_request_trailers"), respHeaders: get("proxy_on_response_headers"),
		respBody: get("proxy_on_response_body"), respTrailers: get("proxy_on_response_trailers"),
	}
	if e.alloc == nil {
		e.alloc = get("malloc")
	}
	if e.alloc == nil || e.contextCreate == nil {
		return errors.New("proxyhost: not a proxy-wasm module: proxy_on_memory_allocate or proxy_on_context_create missing")
	}
	return nil
}
