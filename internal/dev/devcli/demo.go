package devcli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/ecsmesh/ecsmesh/internal/dev/devdemo"
)

func newDemoCmd(env Env) *cobra.Command {
	var dataDir, adminAddr string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "four sidecars (web, redis, backend v1 and v2) through the whole flow against `make run` (started if not up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return devDemo(cmd.Context(), env, dataDir, adminAddr)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./ecsmesh-data", "the data directory of `make run`")
	cmd.Flags().StringVar(&adminAddr, "admin-addr", "127.0.0.1:5681", "the admin API of `make run`")
	return cmd
}

func devDemo(ctx context.Context, env Env, dataDir, adminAddr string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin := filepath.Dir(self)
	o := devdemo.Options{
		AdminURL:  "http://" + adminAddr,
		DataDir:   dataDir,
		DevBinary: self,
		DPBinary:  filepath.Join(bin, "ecsmesh-dp"),
		WasmFile:  filepath.Join(bin, "ecsmesh-filter.wasm"),
		Out:       env.Stdout,
	}
	for _, f := range []string{o.DPBinary, o.WasmFile, filepath.Join(bin, "ecsmesh-cp")} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("demo: %s is missing: run `make build` first", f)
		}
	}
	if !adminReady(ctx, o.AdminURL) {
		fprintf(env.Stdout, "make run is not up: starting it (ecsmesh-dev run --data-dir %s)\n", dataDir)
		run := exec.Command(self, "run", "--data-dir", dataDir, "--admin-addr", adminAddr)
		logFile, err := os.Create(filepath.Join(os.TempDir(), "ecsmesh-demo-run.log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		run.Stdout, run.Stderr = logFile, logFile
		if err := run.Start(); err != nil {
			return fmt.Errorf("demo: starting ecsmesh-dev run: %w", err)
		}
		defer func() {
			_ = run.Process.Signal(syscall.SIGTERM)
			_ = run.Wait()
		}()
		deadline := time.Now().Add(60 * time.Second)
		for !adminReady(ctx, o.AdminURL) {
			if time.Now().After(deadline) {
				return fmt.Errorf("demo: the local mesh did not come up; see %s", logFile.Name())
			}
			time.Sleep(250 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // dev.env is written right after the CP starts
	}
	d, err := devdemo.New(o)
	if err != nil {
		return err
	}
	defer func() {
		fprintf(env.Stdout, "\nStopping the sidecars (SIGTERM: not ready at the CP first, then Envoy)...\n")
		d.StopAgents()
	}()
	res, err := d.Run(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w (agent logs: %s)", err, filepath.Join(dataDir, "demo", "*", "agent.log"))
	}
	fprintf(env.Stdout, "\nDone: routed to cluster %q, web → backend split %d/%d (v1/v2), permitted then refused (%d), forged login refused (%d %s).\n",
		res.Routed.Headers[filter.HeaderCluster], res.Split.Counts[devdemo.BackendV1], res.Split.Counts[devdemo.BackendV2],
		res.Refused.Status, res.ForgedStatus, res.ForgedReason)
	return nil
}

func adminReady(ctx context.Context, base string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ready", nil)
	if err != nil {
		return false
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
