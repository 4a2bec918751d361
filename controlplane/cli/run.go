package cli

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/ecsmesh/ecsmesh/api/validation"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/cp"
)

func newRunCmd(env Env) *cobra.Command {
	var f config.Flags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "run the control plane",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(f, env.Lookup)
			if err != nil {
				if verr, ok := validation.As(err); ok {
					fprintf(env.Stderr, "ecsmesh-cp: invalid configuration:\n")
					for _, v := range verr.Violations {
						fprintf(env.Stderr, "  %s: %s\n", v.Field, v.Message)
					}
				}
				return err
			}
			log := newLogger(env, cfg.LogLevel)
			srv, err := cp.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&f.ConfigFile, "config", "", "YAML configuration file")
	cmd.Flags().StringVar(&f.APIAddr, "api-addr", "", "sidecar API address (default :5678, env ECSMESH_API_ADDR)")
	cmd.Flags().StringVar(&f.XDSAddr, "xds-addr", "", "ADS address (default :5679, env ECSMESH_XDS_ADDR)")
	cmd.Flags().StringVar(&f.AdminAddr, "admin-addr", "", "admin API address (default 127.0.0.1:5681, env ECSMESH_ADMIN_ADDR)")
	cmd.Flags().StringVar(&f.DataDir, "data-dir", "", "data directory (default ./ecsmesh-data, env ECSMESH_DATA_DIR)")
	return cmd
}

func newLogger(env Env, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	w := env.Stderr
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
