package devcli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// DevEnvFile is written by `ecsmesh-dev run` under the data directory: the
// environment a local agent needs (one KEY=VALUE per line, shell-sourceable).
const DevEnvFile = "dev.env"

type devRunFlags struct {
	dataDir, awsAddr, apiAddr, xdsAddr, adminAddr, cpBinary string
}

func newRunCmd(env Env) *cobra.Command {
	f := devRunFlags{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "start the local AWS emulation and ecsmesh-cp beside it (make run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return devRun(cmd.Context(), env, f)
		},
	}
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "./ecsmesh-data", "state directory (SQLite store, CA files, dev.env)")
	cmd.Flags().StringVar(&f.awsAddr, "aws-addr", "127.0.0.1:4566", "local AWS emulation address")
	cmd.Flags().StringVar(&f.apiAddr, "api-addr", "127.0.0.1:5678", "sidecar API address")
	cmd.Flags().StringVar(&f.xdsAddr, "xds-addr", "127.0.0.1:5679", "ADS address")
	cmd.Flags().StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:5681", "admin API address")
	cmd.Flags().StringVar(&f.cpBinary, "cp-binary", "", "the ecsmesh-cp to run (default: ecsmesh-cp next to ecsmesh-dev)")
	return cmd
}

func devRun(ctx context.Context, env Env, f devRunFlags) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := newLogger(env)
	cloud, err := devcloud.Start(ctx, devcloud.Options{Addr: f.awsAddr, Services: devcloud.DemoServices, Logger: log})
	if err != nil {
		return fmt.Errorf("run: starting the local AWS emulation on %s: %w", f.awsAddr, err)
	}
	defer cloud.Close()
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("run: creating %s: %w", f.dataDir, err)
	}
	dataDir, _ := filepath.Abs(f.dataDir)
	serverID, err := devcloud.ServerID(dataDir)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	cpBin := f.cpBinary
	if cpBin == "" {
		if cpBin, err = sibling("ecsmesh-cp"); err != nil {
			return fmt.Errorf("run: %w", err)
		}
	}
	if _, err := os.Stat(cpBin); err != nil {
		return fmt.Errorf("run: %s is missing: run `make build` first, or pass --cp-binary", cpBin)
	}
	cpEnv := append(os.Environ(), cloud.CPEnv()...)
	cpEnv = append(cpEnv,
		"ECSMESH_DATA_DIR="+dataDir,
		"ECSMESH_API_ADDR="+f.apiAddr,
		"ECSMESH_XDS_ADDR="+f.xdsAddr,
		"ECSMESH_ADMIN_ADDR="+f.adminAddr,
		"ECSMESH_AWSIAM_SERVER_ID="+serverID,
		"KUMA_STORE_TYPE=sqlite",
	)
	child := exec.CommandContext(ctx, cpBin, "run")
	child.Env = cpEnv
	child.Stdout, child.Stderr = env.Stderr, env.Stderr
	child.Cancel = func() error { return child.Process.Signal(syscall.SIGTERM) }
	child.WaitDelay = 15 * time.Second
	if err := child.Start(); err != nil {
		return fmt.Errorf("run: starting the control plane: %w", err)
	}
	envFile := filepath.Join(dataDir, DevEnvFile)
	if err := writeDevEnv(envFile, cloud, f, serverID); err != nil {
		return err
	}
	fprintf(env.Stdout, `
ecsmesh is running locally.
  admin API      http://%s   (build/ecsmesh-cp get meshes)
  sidecar API    https://%s  (CA: %s)
  ADS (xDS)      %s
  local AWS      %s  (STS, IAM, ECS, Route53 zone %s = %s, task metadata)
  state          %s (SQLite; a second make run reuses it)
  agent env      %s
  server ID      %s  (ECSMESH_AWSIAM_SERVER_ID, unique to this state directory)

Next: in another terminal, run "make demo" (two sidecars, web and redis),
or apply resources:  build/ecsmesh-cp apply -f FILE
Ctrl-C stops everything.
`, f.adminAddr, f.apiAddr, filepath.Join(dataDir, "cp-ca.pem"), f.xdsAddr, cloud.URL(), devcloud.DefaultDomain, cloud.ZoneID(), dataDir, envFile, serverID)
	err = child.Wait()
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("run: the control plane exited: %w", err)
	}
	return nil
}

func writeDevEnv(path string, cloud *devcloud.Cloud, f devRunFlags, serverID string) error {
	return cloud.WriteEnvFile(path, devcloud.EnvFile{
		AdminURL: "http://" + f.adminAddr, APIURL: "https://" + f.apiAddr, ServerID: serverID,
	})
}
