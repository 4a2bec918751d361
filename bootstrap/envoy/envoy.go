// Package envoy runs Envoy as a child process of the agent: it starts the
// binary with the generated bootstrap, forwards signals, stops it (SIGTERM,
// then SIGKILL after a grace period) and reports its exit status.
package envoy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// DefaultBinary is looked up in PATH.
const DefaultBinary = "envoy"

// Options start Envoy.
type Options struct {
	// Binary is the envoy executable (default "envoy", looked up in PATH).
	Binary string
	// BootstrapPath is passed as -c.
	BootstrapPath string
	// DrainTime is passed as --drain-time-s (Envoy's own listener drain).
	DrainTime time.Duration
	// ExtraArgs are appended (e.g. --log-level debug, --concurrency 2).
	ExtraArgs []string
	// Env are variables added to the agent's environment for Envoy
	// ("NAME=value").
	Env []string
	// Stdout and Stderr default to the agent's.
	Stdout, Stderr io.Writer
	// Logger; nil discards.
	Logger *slog.Logger
}

// Args returns Envoy's command line for o (without the binary).
func (o Options) Args() []string {
	args := []string{"-c", o.BootstrapPath, "--disable-hot-restart"}
	if o.DrainTime > 0 {
		args = append(args, "--drain-time-s", strconv.Itoa(int(o.DrainTime.Round(time.Second)/time.Second)), "--drain-strategy", "immediate")
	}
	return append(args, o.ExtraArgs...)
}

// Process is a running Envoy.
type Process struct {
	cmd  *exec.Cmd
	log  *slog.Logger
	done chan struct{}

	mu   sync.Mutex
	code int
	err  error
}

// Start launches Envoy. The process is not tied to ctx: the agent stops it
// with Stop after draining.
func Start(ctx context.Context, o Options) (*Process, error) {
	bin := o.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("envoy: finding the Envoy binary %q (--envoy-binary): %w", bin, err)
	}
	if o.BootstrapPath == "" {
		return nil, errors.New("envoy: no bootstrap file")
	}
	cmd := exec.Command(path, o.Args()...)
	if len(o.Env) > 0 {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	// Envoy gets the agent's signals only through Signal, never twice from
	// a terminal's process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("envoy: starting %s: %w", path, err)
	}
	p := &Process{cmd: cmd, log: log, done: make(chan struct{})}
	log.InfoContext(ctx, "envoy started", "pid", cmd.Process.Pid, "binary", path, "args", cmd.Args[1:])
	go p.wait()
	return p, nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	p.mu.Lock()
	p.code = p.cmd.ProcessState.ExitCode()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		p.code = 128 + int(ws.Signal())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		p.err = err
	}
	p.mu.Unlock()
	p.log.Info("envoy exited", "pid", p.cmd.Process.Pid, "code", p.code)
	close(p.done)
}

// PID returns the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when Envoy has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode returns Envoy's exit status once Done is closed (128+signal
// when killed by a signal).
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// Signal forwards sig to Envoy; signalling an exited Envoy is not an error.
func (p *Process) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("envoy: sending %s to pid %d: %w", sig, p.cmd.Process.Pid, err)
	}
	return nil
}

// Stop sends SIGTERM and waits for Envoy to exit; after grace (via after,
// the agent's clock) it kills it. It returns the exit code.
func (p *Process) Stop(grace <-chan time.Time) int {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		p.log.Warn("stopping envoy", "error", err)
	}
	select {
	case <-p.done:
	case <-grace:
		p.log.Warn("envoy did not exit after SIGTERM; killing it", "pid", p.cmd.Process.Pid)
		_ = p.Signal(syscall.SIGKILL)
		<-p.done
	}
	return p.ExitCode()
}
