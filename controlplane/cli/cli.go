// Package cli is the ecsmesh-cp command line: `run` serves the control
// plane; `apply`, `get`, `delete` and `inspect` talk to its admin API
// (--api, ECSMESH_API; token from ECSMESH_ADMIN_TOKEN; over https://, the
// CP's CA from --ca-cert-file, ECSMESH_API_CA_CERT_FILE or
// $ECSMESH_DATA_DIR/cp-ca.pem).
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/cp"
)

// Env is what a command sees of the outside world, injected for tests.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Lookup func(string) (string, bool)
}

// OSEnv is the process's environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Lookup: os.LookupEnv}
}

// Run executes ecsmesh-cp with args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	root := newRoot(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	return root.ExecuteContext(ctx)
}

type globals struct {
	api   string
	token string
	// caFile pins the admin API's CA (--ca-cert-file); caDefault is the
	// CP's cp-ca.pem, trusted beside the system roots when it exists.
	caFile    string
	caDefault string
}

func newRoot(env Env) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "ecsmesh-cp",
		Short:         "ecsmesh control plane: mTLS, IAM workload identity and DNS discovery for Amazon ECS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defAPI := "http://127.0.0.1:5681"
	if v, ok := env.Lookup("ECSMESH_API"); ok && v != "" {
		defAPI = v
	}
	g.token, _ = env.Lookup("ECSMESH_ADMIN_TOKEN")
	root.PersistentFlags().StringVar(&g.api, "api", defAPI, "admin API URL (env ECSMESH_API)")
	defCA, _ := env.Lookup("ECSMESH_API_CA_CERT_FILE")
	root.PersistentFlags().StringVar(&g.caFile, "ca-cert-file", defCA,
		"CA certificate the https:// admin API must present, e.g. the CP's cp-ca.pem (env ECSMESH_API_CA_CERT_FILE; default: $ECSMESH_DATA_DIR/cp-ca.pem if it exists, beside the system roots)")
	dataDir := config.Default().DataDir
	if v, ok := env.Lookup("ECSMESH_DATA_DIR"); ok && v != "" {
		dataDir = v
	}
	g.caDefault = filepath.Join(dataDir, cp.CACertFile)
	root.AddCommand(newRunCmd(env), newApplyCmd(g, env), newGetCmd(g, env), newDeleteCmd(g, env), newInspectCmd(g, env), newRotateCmd(g, env), newRevokeCmd(g, env))
	return root
}

func fprintf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
