// Package agent is the run loop of the sidecar agent ecsmesh-dp:
// read the ECS task metadata, render the Dataplane, log in with the task's
// IAM role and call /bootstrap, write and validate Envoy's bootstrap and
// the token file, start Envoy, refresh the token at half its life, sync the
// app containers' health to the CP every second and, on SIGTERM, turn the
// inbounds not ready, drain, stop Envoy and exit with its status.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/bootstrap/dataplane"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
	"github.com/ecsmesh/ecsmesh/bootstrap/envoy"
	"github.com/ecsmesh/ecsmesh/bootstrap/metrics"
)

// Auth types (--auth-type).
const (
	AuthAWS  = "aws"
	AuthNone = "none"
)

// File names in the work directory.
const (
	BootstrapFile = "bootstrap.json"
	TokenFile     = "token"
	CACertFile    = "cp-ca.pem"
)

// Metadata reads the ECS task metadata; *ecsmeta.Client implements it.
type Metadata interface {
	// Task reads the task, retrying while the endpoint warms up.
	Task(ctx context.Context) (ecsmeta.Task, error)
	// TaskOnce reads it once.
	TaskOnce(ctx context.Context) (ecsmeta.Task, error)
	// Self reads the agent's own container.
	Self(ctx context.Context) (ecsmeta.Container, error)
}

// Envoy is a running proxy; *envoy.Process implements it.
type Envoy interface {
	Done() <-chan struct{}
	ExitCode() int
	Signal(os.Signal) error
	Stop(grace <-chan time.Time) int
}

// Launcher starts Envoy.
type Launcher func(ctx context.Context, o envoy.Options) (Envoy, error)

// Clock is the agent's time source: every wait goes through After. Nil
// means the real clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ExitError reports Envoy's non-zero exit status.
type ExitError struct {
	Code int
	// Unexpected is set when Envoy exited without being asked to.
	Unexpected bool
}

func (e *ExitError) Error() string {
	if e.Unexpected {
		return fmt.Sprintf("agent: envoy exited unexpectedly with status %d", e.Code)
	}
	return fmt.Sprintf("agent: envoy exited with status %d", e.Code)
}

// Config configures the agent.
type Config struct {
	// CPURL is the sidecar API, e.g. https://ecsmesh-cp:5678.
	CPURL string
	// AuthType is aws (IAM login with the task role) or none.
	AuthType string
	// Login signs a fresh login token (aws); required with AuthAWS.
	Login func(ctx context.Context) (string, error)
	// Template is the Dataplane template text; Vars its --dataplane-var.
	Template string
	Vars     map[string]string
	// ProxyType is dataplane (default), ingress or egress.
	ProxyType string
	// BindOutbounds asks the CP for VIP listeners of every service.
	BindOutbounds bool
	// CACertFile is the CP's CA (its cp-ca.pem): the agent's calls and
	// Envoy's ADS connection trust it alone. Required unless SystemCACerts.
	CACertFile string
	// SystemCACerts trusts the system roots instead of a pinned CA
	// (--use-system-ca-certs, for a CP certificate from a public CA).
	SystemCACerts bool
	// HTTPClient calls the CP; nil builds one with NewHTTPClient. A given
	// client must trust what CACertFile/SystemCACerts say.
	HTTPClient *http.Client
	// WorkDir holds the bootstrap and token files.
	WorkDir string
	// Envoy: binary, extra args, admin port (0 = the CP's default 9901).
	EnvoyBinary string
	EnvoyArgs   []string
	AdminPort   int
	// DrainTime bounds the drain after SIGTERM (default 30s).
	DrainTime time.Duration
	// KillGrace is how long Envoy has to exit after SIGTERM (default 10s).
	KillGrace time.Duration
	// ReadinessAddr serves GET /ready for the container health check
	// (default 127.0.0.1:9902; "" disables).
	ReadinessAddr string
	// HealthInterval is the health sync period (default 1s).
	HealthInterval time.Duration
	// BootstrapTimeout bounds the retries of /bootstrap (default 5m).
	BootstrapTimeout time.Duration
	// Version is the agent's version, sent to the CP.
	Version string
	// MetricsListen opens the MeshMetric endpoint's listener (nil:
	// net.Listen on 0.0.0.0:<port>).
	MetricsListen func(network, addr string) (net.Listener, error)

	Metadata Metadata
	Launch   Launcher
	Clock    Clock
	Logger   *slog.Logger
}

// Agent is one sidecar agent.
type Agent struct {
	cfg Config
	log *slog.Logger
	cp  *cpClient
	clk Clock

	mu         sync.Mutex
	token      string
	tokenRecv  time.Time
	tokenExp   time.Time
	dp         *resource.Dataplane
	self       string
	envoyUp    bool
	draining   bool
	ready      bool
	readyAddr  string
	adminPort  int
	reloadable bool
	refreshNow chan struct{}
	// rejoin asks the next refresh to register again with /bootstrap: the
	// CP answered health sync with 404, it no longer has the Dataplane.
	rejoin atomic.Bool
	// task is the task metadata read at start, for re-registering.
	task ecsmeta.Task
	// met are the agent's own metrics; metrics serves the MeshMetric
	// endpoint the CP configures with each health sync.
	met       *agentMetrics
	metrics   *metrics.Server
	metricsOn *dpapi.Metrics
	metricErr string
}

// New checks cfg and returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.AuthType == "" {
		cfg.AuthType = AuthAWS
	}
	switch cfg.AuthType {
	case AuthAWS:
		if cfg.Login == nil {
			return nil, errors.New("agent: --auth-type aws needs AWS credentials (a login signer)")
		}
	case AuthNone:
	default:
		return nil, fmt.Errorf("agent: --auth-type %q must be aws or none", cfg.AuthType)
	}
	if cfg.Template == "" {
		return nil, errors.New("agent: no Dataplane template: pass --dataplane-file or set KUMA_DATAPLANE_RUNTIME_RESOURCE")
	}
	if cfg.Metadata == nil || cfg.Launch == nil {
		return nil, errors.New("agent: metadata client and Envoy launcher are required")
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("agent: a work directory is required")
	}
	if cfg.ProxyType == "" {
		cfg.ProxyType = "dataplane"
	}
	if cfg.DrainTime <= 0 {
		cfg.DrainTime = 30 * time.Second
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 10 * time.Second
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.BootstrapTimeout <= 0 {
		cfg.BootstrapTimeout = 5 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		var err error
		if hc, err = NewHTTPClient(cfg.CACertFile, cfg.SystemCACerts); err != nil {
			return nil, err
		}
	} else if err := checkTrust(cfg.CACertFile, cfg.SystemCACerts); err != nil {
		return nil, err
	}
	cp, err := newCPClient(cfg.CPURL, hc)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, cp: cp, clk: cfg.Clock, refreshNow: make(chan struct{}, 1), met: newAgentMetrics()}
	if a.metrics, err = a.newMetricsServer(); err != nil {
		return nil, err
	}
	return a, nil
}

// TokenPath is where the agent keeps the dataplane token.
func (a *Agent) TokenPath() string { return filepath.Join(a.cfg.WorkDir, TokenFile) }

// BootstrapPath is where the agent writes Envoy's bootstrap.
func (a *Agent) BootstrapPath() string { return filepath.Join(a.cfg.WorkDir, BootstrapFile) }

// ReadinessAddr returns the bound readiness address once Run serves it.
func (a *Agent) ReadinessAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readyAddr
}

// Run runs the agent until Envoy exits or a SIGTERM/SIGINT on signals has
// been handled; other signals on it are forwarded to Envoy. Cancelling ctx
// stops Envoy without draining. A non-zero Envoy exit is an *ExitError.
func (a *Agent) Run(ctx context.Context, signals <-chan os.Signal) error {
	if err := os.MkdirAll(a.cfg.WorkDir, 0o700); err != nil {
		return fmt.Errorf("agent: creating the work directory: %w", err)
	}
	task, err := a.cfg.Metadata.Task(ctx)
	if err != nil {
		return fmt.Errorf("agent: reading ECS task metadata: %w", err)
	}
	if self, err := a.cfg.Metadata.Self(ctx); err == nil {
		a.self = self.Name
	} else {
		a.log.Warn("cannot read the agent's own container metadata; every container counts as an app", "error", err)
	}
	dp, err := dataplane.Build(a.cfg.Template, dataplane.Merge(dataplane.TaskVars(task), a.cfg.Vars))
	if err != nil {
		return err
	}
	if dp.Labels == nil {
		dp.Labels = map[string]string{}
	}
	if _, ok := dp.Labels[resource.LabelECSCluster]; !ok && task.ClusterName() != "" {
		dp.Labels[resource.LabelECSCluster] = task.ClusterName()
	}
	if a.cfg.BindOutbounds {
		// The xDS server reads this label (and the node metadata).
		dp.Labels[resource.LabelBindOutbounds] = "true"
	}
	a.dp = dp
	a.log = a.log.With("mesh", dp.Mesh, "dataplane", dp.Name)
	defer a.metrics.Close()

	stopReady, err := a.serveReadiness()
	if err != nil {
		return err
	}
	defer stopReady()

	a.mu.Lock()
	a.task = task
	a.mu.Unlock()
	boot, err := a.bootstrapWithRetry(ctx, task)
	if err != nil {
		return err
	}
	proc, err := a.startEnvoy(ctx, boot)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.envoyUp = true
	a.mu.Unlock()

	loopCtx, stopLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.refreshLoop(loopCtx) }()
	go func() { defer wg.Done(); a.healthLoop(loopCtx) }()
	defer func() { stopLoops(); wg.Wait() }()

	for {
		select {
		case <-ctx.Done():
			a.log.Info("stopping without drain (context ended)")
			stopLoops()
			proc.Stop(a.clk.After(a.cfg.KillGrace))
			return nil
		case <-proc.Done():
			code := proc.ExitCode()
			a.log.Error("envoy exited unexpectedly", "code", code)
			stopLoops()
			wg.Wait()
			a.markDraining(context.WithoutCancel(ctx))
			if code == 0 {
				code = 1
			}
			return &ExitError{Code: code, Unexpected: true}
		case sig := <-signals:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == os.Interrupt {
				a.log.Info("draining", "signal", sig.String(), "drainTime", a.cfg.DrainTime)
				stopLoops()
				wg.Wait()
				code := a.drain(context.WithoutCancel(ctx), proc, signals)
				if code != 0 {
					return &ExitError{Code: code}
				}
				return nil
			}
			a.log.Info("forwarding signal to envoy", "signal", sig.String())
			if err := proc.Signal(sig); err != nil {
				a.log.Warn("forwarding signal", "error", err)
			}
		}
	}
}

// drain marks the dataplane not ready, asks Envoy to drain its inbound
// listeners, waits DrainTime or until the app containers stopped (or a
// second SIGTERM), then stops Envoy and returns its exit status.
func (a *Agent) drain(ctx context.Context, proc Envoy, signals <-chan os.Signal) int {
	a.markDraining(ctx)
	a.drainEnvoyListeners(ctx)
	deadline := a.clk.After(a.cfg.DrainTime)
wait:
	for {
		if a.appsStopped(ctx) {
			a.log.Info("app containers stopped; ending the drain")
			break
		}
		select {
		case <-deadline:
			a.log.Info("drain time over")
			break wait
		case <-proc.Done():
			break wait
		case sig := <-signals:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == os.Interrupt {
				a.log.Info("second signal; stopping envoy now", "signal", sig.String())
				break wait
			}
			_ = proc.Signal(sig)
		case <-a.clk.After(a.cfg.HealthInterval):
		}
	}
	a.log.Info("stopping envoy")
	code := proc.Stop(a.clk.After(a.cfg.KillGrace))
	a.log.Info("envoy stopped", "code", code)
	return code
}

// markDraining turns every inbound not ready at the CP (a few quick tries).
func (a *Agent) markDraining(ctx context.Context) {
	a.mu.Lock()
	a.draining, a.ready = true, false
	a.mu.Unlock()
	for attempt := 1; attempt <= 3; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.syncHealth(cctx, false, true)
		cancel()
		if err == nil {
			a.log.Info("inbounds marked not ready at the control plane")
			return
		}
		a.log.Warn("cannot mark the inbounds not ready", "attempt", attempt, "error", err)
		if !retryable(err) {
			return
		}
		select {
		case <-a.clk.After(200 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// drainEnvoyListeners asks Envoy to drain its inbound listeners gracefully
// (best effort).
func (a *Agent) drainEnvoyListeners(ctx context.Context) {
	a.mu.Lock()
	port := a.adminPort
	a.mu.Unlock()
	if port == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/drain_listeners?inboundonly&graceful", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.log.Debug("envoy drain_listeners", "error", err)
		return
	}
	resp.Body.Close()
}

func (a *Agent) appsStopped(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	task, err := a.cfg.Metadata.TaskOnce(cctx)
	if err != nil {
		return false
	}
	apps := 0
	for _, c := range task.Containers {
		if c.Name == a.self {
			continue
		}
		apps++
		if !c.Stopped() {
			return false
		}
	}
	return apps > 0
}

// appsReady reports whether every app container runs and is not unhealthy.
func appsReady(task ecsmeta.Task, self string) bool {
	for _, c := range task.Containers {
		if c.Name == self {
			continue
		}
		if c.KnownStatus != ecsmeta.StatusRunning {
			return false
		}
		if c.Health != "" && c.Health != ecsmeta.Healthy {
			return false
		}
	}
	return true
}

func (a *Agent) serveReadiness() (func(), error) {
	if a.cfg.ReadinessAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.ReadinessAddr)
	if err != nil {
		return nil, fmt.Errorf("agent: listening for readiness on %s (--readiness-port): %w", a.cfg.ReadinessAddr, err)
	}
	a.mu.Lock()
	a.readyAddr = ln.Addr().String()
	a.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// Ready reports nil when Envoy runs, answers its admin /ready, and the
// agent is not draining.
func (a *Agent) Ready(ctx context.Context) error {
	a.mu.Lock()
	up, draining, port := a.envoyUp, a.draining, a.adminPort
	a.mu.Unlock()
	switch {
	case draining:
		return errors.New("draining")
	case !up:
		return errors.New("envoy not started")
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/ready", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("envoy admin: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("envoy admin /ready: HTTP %d", resp.StatusCode)
	}
	return nil
}

func (a *Agent) startEnvoy(ctx context.Context, boot []byte) (Envoy, error) {
	b, err := envoybootstrap.Parse(boot)
	if err != nil {
		return nil, fmt.Errorf("agent: the control plane sent an invalid Envoy bootstrap: %w", err)
	}
	js, err := envoybootstrap.Marshal(b)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(a.BootstrapPath(), js, 0o600); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.adminPort = int(b.GetAdmin().GetAddress().GetSocketAddress().GetPortValue())
	a.mu.Unlock()
	proc, err := a.cfg.Launch(ctx, envoy.Options{
		Binary: a.cfg.EnvoyBinary, BootstrapPath: a.BootstrapPath(), DrainTime: a.cfg.DrainTime,
		ExtraArgs: a.cfg.EnvoyArgs, Logger: a.log, Env: envoyEnv(a.dp),
	})
	if err != nil {
		return nil, err
	}
	a.met.envoyStarts.Inc()
	return proc, nil
}

// envoyEnv is what the agent tells Envoy through its environment: the
// Dataplane's first service and its address, which access log lines of
// calls it makes read (%ENVIRONMENT(ECSMESH_SERVICE)%: the listeners of
// those calls are shared by every caller, so the CP cannot write them in).
func envoyEnv(dp *resource.Dataplane) []string {
	env := []string{dpapi.EnvoyEnvAddress + "=" + dp.Networking.Address}
	if svcs := dp.Services(); len(svcs) > 0 {
		env = append(env, dpapi.EnvoyEnvService+"="+svcs[0])
	}
	return env
}
