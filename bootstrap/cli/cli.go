// Package cli is the command line of ecsmesh-dp: `run` (the sidecar
// agent), `ready` (the container health check) and `version`. Flags and
// environment variables keep Kuma / Kong Mesh names where those exist.
//
// KUMA_DATAPLANE_RUNTIME_RESOURCE holds the Dataplane template itself, as
// in kuma-dp (--dataplane); KUMA_DATAPLANE_RUNTIME_RESOURCE_PATH names a
// file (--dataplane-file). As a convenience, a
// KUMA_DATAPLANE_RUNTIME_RESOURCE value of one line naming an existing
// file is read as that file.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/ecsmesh/ecsmesh/bootstrap/agent"
	"github.com/ecsmesh/ecsmesh/bootstrap/awslogin"
	"github.com/ecsmesh/ecsmesh/bootstrap/dataplane"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
	"github.com/ecsmesh/ecsmesh/bootstrap/envoy"
)

// Version is the agent's version (set with -ldflags -X).
var Version = "dev"

// flagEnv maps each flag to the environment variable that sets it.
var flagEnv = map[string]string{
	"cp-address":          "KUMA_CONTROL_PLANE_URL",
	"auth-type":           "ECSMESH_DP_AUTH_TYPE",
	"dataplane":           "KUMA_DATAPLANE_RUNTIME_RESOURCE",
	"dataplane-file":      "KUMA_DATAPLANE_RUNTIME_RESOURCE_PATH",
	"dataplane-var":       "KUMA_DATAPLANE_RUNTIME_RESOURCE_VARS",
	"proxy-type":          "KUMA_DATAPLANE_PROXY_TYPE",
	"bind-outbounds":      "ECSMESH_DP_BIND_OUTBOUNDS",
	"ca-cert-file":        "KUMA_CONTROL_PLANE_CA_CERT_FILE",
	"ca-cert":             "KUMA_CONTROL_PLANE_CA_CERT",
	"use-system-ca-certs": "ECSMESH_DP_USE_SYSTEM_CA_CERTS",
	"envoy-binary":        "KUMA_DATAPLANE_RUNTIME_BINARY_PATH",
	"envoy-arg":           "ECSMESH_DP_ENVOY_ARGS",
	"drain-time":          "KUMA_DATAPLANE_DRAIN_TIME",
	"server-id":           "ECSMESH_AWSIAM_SERVER_ID",
	"workdir":             "KUMA_DATAPLANE_RUNTIME_CONFIG_DIR",
	"admin-port":          "ECSMESH_DP_ADMIN_PORT",
	"readiness-port":      "KUMA_READINESS_PORT",
	"log-level":           "ECSMESH_DP_LOG_LEVEL",
	"metadata-uri":        ecsmeta.EnvURI,
	"bootstrap-retry":     "ECSMESH_DP_BOOTSTRAP_TIMEOUT",
}

// EnvNames lists every environment variable ecsmesh-dp reads (its own and
// the AWS SDK's it relies on).
func EnvNames() []string {
	out := []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_STS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"}
	for _, e := range flagEnv {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// options are the parsed flags of `run`.
type options struct {
	cpAddress, authType, dataplane, dataplaneFile, proxyType string
	vars                                                     []string
	bindOutbounds, systemCACerts                             bool
	caCertFile, caCert, envoyBinary, serverID, workdir       string
	envoyArgs                                                []string
	drainTime, bootstrapTimeout                              time.Duration
	adminPort, readinessPort                                 int
	logLevel, metadataURI                                    string
}

// Run executes ecsmesh-dp with args (without the program name). A
// non-zero Envoy exit is returned as *agent.ExitError.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	root := &cobra.Command{Use: "ecsmesh-dp", Short: "ecsmesh sidecar agent for Amazon ECS", SilenceUsage: true, SilenceErrors: true}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(runCommand(ctx, stderr, lookup), readyCommand(lookup), &cobra.Command{
		Use: "version", Short: "print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "ecsmesh-dp", Version)
			return err
		},
	})
	return root.ExecuteContext(ctx)
}

func envDefault(lookup func(string) (string, bool), flag, def string) string {
	if v, ok := lookup(flagEnv[flag]); ok && v != "" {
		return v
	}
	return def
}

func runCommand(ctx context.Context, stderr io.Writer, lookup func(string) (string, bool)) *cobra.Command {
	cmd, _ := newRunCommand(ctx, stderr, lookup)
	return cmd
}

// newRunCommand returns `run` and the options its flags fill.
func newRunCommand(ctx context.Context, stderr io.Writer, lookup func(string) (string, bool)) (*cobra.Command, *options) {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "join the mesh: log in with the task role, bootstrap and supervise Envoy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.fromEnv(cmd, lookup); err != nil {
				return err
			}
			return o.run(ctx, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cpAddress, "cp-address", "https://localhost:5678", "control plane sidecar API URL (KUMA_CONTROL_PLANE_URL)")
	f.StringVar(&o.authType, "auth-type", agent.AuthAWS, "aws (IAM login with the task role) or none (local development)")
	f.StringVar(&o.dataplane, "dataplane", "", "Dataplane template text (KUMA_DATAPLANE_RUNTIME_RESOURCE)")
	f.StringVar(&o.dataplaneFile, "dataplane-file", "", "Dataplane template file (KUMA_DATAPLANE_RUNTIME_RESOURCE_PATH)")
	f.StringArrayVar(&o.vars, "dataplane-var", nil, "template variable name=value; repeatable (KUMA_DATAPLANE_RUNTIME_RESOURCE_VARS, comma-separated)")
	f.StringVar(&o.proxyType, "proxy-type", "dataplane", "dataplane, ingress or egress")
	f.BoolVar(&o.bindOutbounds, "bind-outbounds", false, "listen on every reachable service's VIP")
	f.StringVar(&o.caCertFile, "ca-cert-file", "", "CA certificate of the control plane, its cp-ca.pem; the only CA the agent and Envoy trust for it (KUMA_CONTROL_PLANE_CA_CERT_FILE)")
	f.StringVar(&o.caCert, "ca-cert", "", "CA certificate PEM of the control plane, instead of --ca-cert-file (KUMA_CONTROL_PLANE_CA_CERT)")
	f.BoolVar(&o.systemCACerts, "use-system-ca-certs", false, "trust the system roots for the control plane instead of a pinned CA, for a CP certificate from a public CA (ECSMESH_DP_USE_SYSTEM_CA_CERTS)")
	f.StringVar(&o.envoyBinary, "envoy-binary", envoy.DefaultBinary, "Envoy executable (KUMA_DATAPLANE_RUNTIME_BINARY_PATH)")
	f.StringArrayVar(&o.envoyArgs, "envoy-arg", nil, "extra Envoy argument; repeatable")
	f.DurationVar(&o.drainTime, "drain-time", 30*time.Second, "longest drain after SIGTERM (KUMA_DATAPLANE_DRAIN_TIME)")
	f.DurationVar(&o.bootstrapTimeout, "bootstrap-retry", 5*time.Minute, "how long to retry /bootstrap while the control plane is unavailable")
	f.StringVar(&o.serverID, "server-id", "", "signed X-Ecsmesh-Server-Id of the login, the control plane's ECSMESH_AWSIAM_SERVER_ID; required with --auth-type aws (ECSMESH_AWSIAM_SERVER_ID)")
	f.StringVar(&o.workdir, "workdir", filepath.Join(os.TempDir(), "ecsmesh-dp"), "where the bootstrap and token files are written")
	f.IntVar(&o.adminPort, "admin-port", 9901, "Envoy admin port on 127.0.0.1")
	f.IntVar(&o.readinessPort, "readiness-port", 9902, "agent readiness port on 127.0.0.1 (GET /ready; 0 disables)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.metadataURI, "metadata-uri", "", "ECS task metadata v4 endpoint (ECS_CONTAINER_METADATA_URI_V4)")
	return cmd, o
}

// fromEnv fills every flag not given on the command line from its
// environment variable.
func (o *options) fromEnv(cmd *cobra.Command, lookup func(string) (string, bool)) error {
	var errs []error
	for flag, env := range flagEnv {
		if cmd.Flags().Changed(flag) {
			continue
		}
		v, ok := lookup(env)
		if !ok || v == "" {
			continue
		}
		fl := cmd.Flags().Lookup(flag)
		if fl == nil {
			continue
		}
		values := []string{v}
		if flag == "dataplane-var" || flag == "envoy-arg" {
			values = strings.Split(v, ",")
			if flag == "envoy-arg" {
				values = strings.Fields(v)
			}
		}
		for _, val := range values {
			if err := fl.Value.Set(strings.TrimSpace(val)); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (o *options) template() (string, error) {
	switch {
	case o.dataplaneFile != "" && o.dataplane != "":
		return "", errors.New("give either --dataplane-file (KUMA_DATAPLANE_RUNTIME_RESOURCE_PATH) or --dataplane (KUMA_DATAPLANE_RUNTIME_RESOURCE), not both")
	case o.dataplaneFile != "":
		b, err := os.ReadFile(o.dataplaneFile)
		if err != nil {
			return "", fmt.Errorf("reading --dataplane-file: %w", err)
		}
		return string(b), nil
	case o.dataplane != "":
		if s := strings.TrimSpace(o.dataplane); !strings.ContainsAny(s, "\n:{") {
			if b, err := os.ReadFile(s); err == nil {
				return string(b), nil
			}
		}
		return o.dataplane, nil
	}
	return "", errors.New("no Dataplane template: pass --dataplane-file or set KUMA_DATAPLANE_RUNTIME_RESOURCE")
}

func (o *options) agentConfig(ctx context.Context, log *slog.Logger) (agent.Config, error) {
	tmpl, err := o.template()
	if err != nil {
		return agent.Config{}, err
	}
	vars := map[string]string{}
	for _, v := range o.vars {
		k, val, err := dataplane.ParseVar(v)
		if err != nil {
			return agent.Config{}, err
		}
		vars[k] = val
	}
	if o.readinessPort < 0 || o.readinessPort > 65535 || o.adminPort < 1 || o.adminPort > 65535 {
		return agent.Config{}, errors.New("--admin-port and --readiness-port must be in 1..65535")
	}
	if err := os.MkdirAll(o.workdir, 0o700); err != nil {
		return agent.Config{}, fmt.Errorf("creating --workdir: %w", err)
	}
	if o.authType == agent.AuthAWS && strings.TrimSpace(o.serverID) == "" {
		return agent.Config{}, errors.New("--server-id (ECSMESH_AWSIAM_SERVER_ID) is required with --auth-type aws: set it to the control plane's ECSMESH_AWSIAM_SERVER_ID, so a login signed for this mesh is refused by every other deployment")
	}
	caFile := o.caCertFile
	if caFile == "" && o.caCert != "" {
		caFile = filepath.Join(o.workdir, agent.CACertFile)
		if err := os.WriteFile(caFile, []byte(o.caCert), 0o600); err != nil {
			return agent.Config{}, fmt.Errorf("writing KUMA_CONTROL_PLANE_CA_CERT: %w", err)
		}
	}
	if caFile != "" {
		// Envoy reads the CA file from its own working directory.
		if abs, err := filepath.Abs(caFile); err == nil {
			caFile = abs
		}
	}
	hc, err := agent.NewHTTPClient(caFile, o.systemCACerts)
	if err != nil {
		return agent.Config{}, err
	}
	meta, err := ecsmeta.New(ecsmeta.Config{BaseURL: o.metadataURI, Logger: log})
	if err != nil {
		return agent.Config{}, err
	}
	cfg := agent.Config{
		CPURL: o.cpAddress, AuthType: o.authType, Template: tmpl, Vars: vars, ProxyType: o.proxyType,
		BindOutbounds: o.bindOutbounds, CACertFile: caFile, SystemCACerts: o.systemCACerts, HTTPClient: hc, WorkDir: o.workdir,
		EnvoyBinary: o.envoyBinary, EnvoyArgs: o.envoyArgs, AdminPort: o.adminPort, DrainTime: o.drainTime,
		BootstrapTimeout: o.bootstrapTimeout, Version: Version, Metadata: meta, Logger: log,
		Launch: func(ctx context.Context, eo envoy.Options) (agent.Envoy, error) { return envoy.Start(ctx, eo) },
	}
	if o.readinessPort > 0 {
		cfg.ReadinessAddr = "127.0.0.1:" + strconv.Itoa(o.readinessPort)
	}
	if o.authType == agent.AuthAWS {
		cfg.Login = o.login(meta)
	}
	return cfg, nil
}

// login signs logins with the SDK default chain (ECS task role
// credentials); without AWS_REGION the region comes from the task ARN.
func (o *options) login(meta *ecsmeta.Client) func(context.Context) (string, error) {
	var once sync.Once
	var cfgErr error
	var loaded aws.Config
	return func(ctx context.Context) (string, error) {
		once.Do(func() {
			c, err := awsconfig.LoadDefaultConfig(ctx)
			if err != nil {
				cfgErr = fmt.Errorf("loading AWS credentials (task role): %w", err)
				return
			}
			if c.Region == "" {
				task, err := meta.Task(ctx)
				if err == nil {
					if parts := strings.Split(task.ARN, ":"); len(parts) > 3 {
						c.Region = parts[3]
					}
				}
			}
			loaded = c
		})
		if cfgErr != nil {
			return "", cfgErr
		}
		return awslogin.NewLoginToken(ctx, loaded, o.serverID)
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func (o *options) run(ctx context.Context, stderr io.Writer) error {
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	cfg, err := o.agentConfig(ctx, log)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	return a.Run(ctx, sigs)
}

func readyCommand(lookup func(string) (string, bool)) *cobra.Command {
	var port int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ready",
		Short: "exit 0 when the agent and Envoy are ready (container health check)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("readiness-port") {
				if v, err := strconv.Atoi(envDefault(lookup, "readiness-port", "")); err == nil {
					port = v
				}
			}
			c := &http.Client{Timeout: timeout}
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", port))
			if err != nil {
				return fmt.Errorf("not ready: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("not ready: %s", strings.TrimSpace(string(body)))
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), string(body))
			return err
		},
	}
	cmd.Flags().IntVar(&port, "readiness-port", 9902, "the agent's readiness port (KUMA_READINESS_PORT)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "request timeout")
	return cmd
}
