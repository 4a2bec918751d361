// Command ecsmesh-dp is the ecsmesh sidecar agent (see package agent and
// docs/reference.md for its flags).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ecsmesh/ecsmesh/bootstrap/agent"
	"github.com/ecsmesh/ecsmesh/bootstrap/cli"
)

func main() {
	err := run(context.Background(), os.Args[1:])
	var ee *agent.ExitError
	switch {
	case errors.As(err, &ee):
		fmt.Fprintln(os.Stderr, "ecsmesh-dp:", err)
		os.Exit(ee.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "ecsmesh-dp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	return cli.Run(ctx, args, os.Stdout, os.Stderr, os.LookupEnv)
}
