package devcli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeenvoy"
)

// FakeEnvoyOutput is the file, next to the bootstrap, where the stand-in
// Envoy writes the configuration it holds.
const FakeEnvoyOutput = "xds.json"

// newEnvoyCmd is `ecsmesh-dev envoy -c BOOTSTRAP [envoy flags...]`:
// the stand-in Envoy of the local run. Envoy's other flags are accepted and
// ignored, so the agent can run it as it runs Envoy (--envoy-binary).
func newEnvoyCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:                "envoy -c BOOTSTRAP",
		Short:              "a stand-in for Envoy: ADS client that writes what it receives (local run only)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			for i := 0; i < len(args); i++ {
				switch args[i] {
				case "-c", "--config-path":
					if i+1 < len(args) {
						path = args[i+1]
						i++
					}
				}
			}
			if path == "" {
				return fmt.Errorf("envoy: -c BOOTSTRAP is required")
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("envoy: reading the bootstrap: %w", err)
			}
			b, err := envoybootstrap.Parse(data)
			if err != nil {
				return fmt.Errorf("envoy: %w", err)
			}
			cfg, err := fakeenvoy.FromBootstrap(b)
			if err != nil {
				return fmt.Errorf("envoy: %w", err)
			}
			out := filepath.Join(filepath.Dir(path), FakeEnvoyOutput)
			log := newLogger(env).With("fakeenvoy", cfg.NodeID)
			log.Info("stand-in Envoy connecting", "ads", cfg.ADS.Address, "output", out)
			return fakeenvoy.Run(cmd.Context(), fakeenvoy.Options{Config: cfg, Output: out, Logger: log})
		},
	}
}
