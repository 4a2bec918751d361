// Package devcli is the ecsmesh-dev command line, the local harness behind
// `make run` and `make demo`: `run` starts the local AWS emulation and the
// real ecsmesh-cp beside it, `demo` joins two sidecars through the whole
// flow, and `envoy` is the stand-in Envoy the agents run where no Envoy
// binary exists. None of it is linked into ecsmesh-cp or ecsmesh-dp.
package devcli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Env is what a command sees of the outside world, injected for tests.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
}

// OSEnv is the process's environment.
func OSEnv() Env { return Env{Stdout: os.Stdout, Stderr: os.Stderr} }

// Run executes ecsmesh-dev with args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	root := &cobra.Command{
		Use:           "ecsmesh-dev",
		Short:         "run the mesh on one machine with a local AWS emulation (make run, make demo)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(env), newEnvoyCmd(env), newDemoCmd(env))
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root.ExecuteContext(ctx)
}

// sibling is the path of the ecsmesh binary name next to this executable
// (make build puts them all in build/).
func sibling(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding ecsmesh-dev: %w", err)
	}
	return filepath.Join(filepath.Dir(self), name), nil
}

func newLogger(env Env) *slog.Logger {
	w := env.Stderr
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func fprintf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
