// Command ecsmesh-dev is the local harness of ecsmesh (make run, make demo):
// a local AWS emulation, the stand-in Envoy and the demo. It is never
// shipped; the production binaries are ecsmesh-cp and ecsmesh-dp.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ecsmesh/ecsmesh/internal/dev/devcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := devcli.Run(ctx, os.Args[1:], devcli.OSEnv()); err != nil {
		fmt.Fprintln(os.Stderr, "ecsmesh-dev:", err)
		os.Exit(1)
	}
}
