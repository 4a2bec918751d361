package proxyhost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Engine selects how wazero runs the guest code.
type Engine int

const (
	// Compiler compiles the module ahead of time to native code (amd64, arm64).
	Compiler Engine = iota
	// Interpreter interprets the module; portable and slow to run, quick to compile.
	Interpreter
)

// String returns "compiler" or "interpreter".
func (e Engine) String() string {
	if e == Interpreter {
		return "interpreter"
	}
	return "compiler"
}

// Options configure a Runtime.
type Options struct {
	// Engine is the wazero engine; the zero value is Compiler.
	Engine Engine
	// CacheDir is a directory for wazero's compilation cache, shared by every
	// runtime (and process) that uses it; "" keeps compiled code in memory
	// only, per runtime. DefaultCacheDir gives a per-user directory.
	CacheDir string
}

// DefaultCacheDir returns the per-user compilation cache directory,
// <os.UserCacheDir>/ecsmesh/wazero, or one under os.TempDir when the user has
// no cache directory.
func DefaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "ecsmesh", "wazero")
}

// Runtime is one wazero runtime with the proxy-wasm host module ("env") and
// WASI preview 1 instantiated. Plugins compiled in it share its shared data
// and shared queues, like VMs with one vm_id in Envoy.
type Runtime struct {
	rt     wazero.Runtime
	cache  wazero.CompilationCache
	engine Engine
	shared sharedState
}

// NewRuntime creates a runtime. Close it to release compiled code.
func NewRuntime(ctx context.Context, o Options) (*Runtime, error) {
	var cfg wazero.RuntimeConfig
	if o.Engine == Interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	} else {
		cfg = wazero.NewRuntimeConfigCompiler()
	}
	r := &Runtime{engine: o.Engine}
	if o.CacheDir != "" {
		if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("proxyhost: creating the compilation cache: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(o.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("proxyhost: opening the compilation cache %s: %w", o.CacheDir, err)
		}
		r.cache = c
		cfg = cfg.WithCompilationCache(c)
	}
	r.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("proxyhost: instantiating WASI: %w", err)
	}
	if err := instantiateEnv(ctx, r.rt); err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("proxyhost: instantiating the proxy-wasm host module: %w", err)
	}
	return r, nil
}

// Engine reports the runtime's engine.
func (r *Runtime) Engine() Engine { return r.engine }

// Close releases the runtime, its plugins and VMs.
func (r *Runtime) Close(ctx context.Context) error {
	err := r.rt.Close(ctx)
	if r.cache != nil {
		if cerr := r.cache.Close(ctx); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("proxyhost: closing the runtime: %w", err)
	}
	return nil
}

// Plugin is a compiled proxy-wasm module, ready to instantiate as VMs.
type Plugin struct {
	rt  *Runtime
	mod wazero.CompiledModule
}

// Compile compiles a proxy-wasm module (or loads it from the compilation cache).
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (*Plugin, error) {
	mod, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("proxyhost: compiling the module: %w", err)
	}
	return &Plugin{rt: r, mod: mod}, nil
}

// Close releases the compiled code (VMs already made keep working).
func (p *Plugin) Close(ctx context.Context) error {
	if err := p.mod.Close(ctx); err != nil {
		return fmt.Errorf("proxyhost: closing the plugin: %w", err)
	}
	return nil
}

// sharedState is the data VMs of one runtime share.
type sharedState struct {
	mu     sync.Mutex
	data   map[string]sharedValue
	queues []sharedQueue
	byName map[string]uint32
}

type sharedValue struct {
	value []byte
	cas   uint32
}

type sharedQueue struct {
	name  string
	items [][]byte
}

func (s *sharedState) get(key []byte) ([]byte, uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[string(key)]
	return v.value, v.cas, ok
}

func (s *sharedState) set(key, value []byte, cas uint32) status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.data = map[string]sharedValue{}
	}
	old, ok := s.data[string(key)]
	if ok && cas != 0 && cas != old.cas {
		return statusCasMismatch
	}
	s.data[string(key)] = sharedValue{value: append([]byte(nil), value...), cas: old.cas + 1}
	return statusOK
}

func (s *sharedState) register(name []byte) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byName[string(name)]; ok {
		return id
	}
	if s.byName == nil {
		s.byName = map[string]uint32{}
	}
	s.queues = append(s.queues, sharedQueue{name: string(name)})
	id := uint32(len(s.queues)) // ids start at 1
	s.byName[string(name)] = id
	return id
}

func (s *sharedState) resolve(name []byte) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byName[string(name)]
	return id, ok
}

func (s *sharedState) enqueue(id uint32, value []byte) status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 || int(id) > len(s.queues) {
		return statusNotFound
	}
	q := &s.queues[id-1]
	q.items = append(q.items, append([]byte(nil), value...))
	return statusOK
}

func (s *sharedState) dequeue(id uint32) ([]byte, status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 || int(id) > len(s.queues) {
		return nil, statusNotFound
	}
	q := &s.queues[id-1]
	if len(q.items) == 0 {
		return nil, statusEmpty
	}
	v := q.items[0]
	q.items = q.items[1:]
	return v, statusOK
}
