// Command ecsmesh-cp is the ecsmesh control plane and its CLI.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ecsmesh/ecsmesh/controlplane/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], cli.OSEnv()); err != nil {
		fmt.Fprintln(os.Stderr, "ecsmesh-cp:", err)
		os.Exit(1)
	}
}
