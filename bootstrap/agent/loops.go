package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
)

type bootstrapResponse struct {
	Bootstrap        json.RawMessage `json:"bootstrap"`
	Token            string          `json:"token"`
	ExpiresAt        time.Time       `json:"expiresAt"`
	ReloadableTokens bool            `json:"reloadableTokens"`
}

// bootstrapWithRetry calls /bootstrap until it succeeds, retrying with
// backoff while the CP is unreachable or answers 5xx/429 (a refused login
// or an invalid Dataplane is final: the error says what to fix).
func (a *Agent) bootstrapWithRetry(ctx context.Context, task ecsmeta.Task) ([]byte, error) {
	start := a.clk.Now()
	wait := time.Second
	for attempt := 1; ; attempt++ {
		resp, err := a.bootstrapOnce(ctx, task)
		a.met.tokens.WithLabelValues("bootstrap", result(err)).Inc()
		if err == nil {
			if err := a.setToken(resp.Token, resp.ExpiresAt); err != nil {
				return nil, err
			}
			a.mu.Lock()
			a.reloadable = resp.ReloadableTokens
			a.mu.Unlock()
			a.log.Info("bootstrapped", "attempt", attempt, "tokenExpiresAt", resp.ExpiresAt, "reloadableTokens", resp.ReloadableTokens)
			return resp.Bootstrap, nil
		}
		if !retryable(err) {
			return nil, fmt.Errorf("agent: bootstrap: %w", err)
		}
		if a.clk.Now().Sub(start) >= a.cfg.BootstrapTimeout {
			return nil, fmt.Errorf("agent: bootstrap: gave up after %s: %w", a.cfg.BootstrapTimeout, err)
		}
		a.log.Warn("bootstrap failed; retrying", "attempt", attempt, "in", wait, "error", err)
		select {
		case <-a.clk.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("agent: bootstrap: %w (last error: %w)", ctx.Err(), err)
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (a *Agent) bootstrapOnce(ctx context.Context, task ecsmeta.Task) (*bootstrapResponse, error) {
	a.mu.Lock()
	dp := *a.dp
	a.mu.Unlock()
	spec, err := resource.Marshal(&dp)
	if err != nil {
		return nil, err
	}
	req := dpapi.BootstrapRequest{
		Mesh: dp.Mesh, Name: dp.Name, ProxyType: a.cfg.ProxyType, DataplaneResource: string(spec),
		Version:    dpapi.Version{EcsmeshDP: dpapi.VersionInfo{Version: a.cfg.Version}},
		Host:       a.cp.hostname(),
		CACertPath: a.cfg.CACertFile, TokenPath: a.TokenPath(), AdminPort: a.cfg.AdminPort,
		BindOutbounds: a.cfg.BindOutbounds, TaskARN: task.ARN, AvailabilityZone: task.AvailabilityZone,
	}
	if a.cfg.AuthType == AuthAWS {
		tok, err := a.cfg.Login(ctx)
		if err != nil {
			return nil, fmt.Errorf("agent: signing the IAM login with the task role: %w", err)
		}
		req.LoginToken = tok
	}
	var resp bootstrapResponse
	if err := a.cp.post(ctx, dpapi.PathBootstrap, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Token == "" || len(resp.Bootstrap) == 0 {
		return nil, errors.New("agent: the control plane's /bootstrap answer has no token or bootstrap")
	}
	return &resp, nil
}

// setToken keeps the token and writes the token file atomically.
func (a *Agent) setToken(tok string, exp time.Time) error {
	if err := writeAtomic(a.TokenPath(), []byte(tok), 0o600); err != nil {
		return err
	}
	a.mu.Lock()
	a.token, a.tokenExp, a.tokenRecv = tok, exp, a.clk.Now()
	a.mu.Unlock()
	a.met.tokenSet(exp)
	return nil
}

func (a *Agent) currentToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

// refreshLoop renews the token at half its life with a fresh signed login;
// on failure it keeps the current token, logs, and retries with backoff.
func (a *Agent) refreshLoop(ctx context.Context) {
	retry := time.Second
	for {
		a.mu.Lock()
		recv, exp := a.tokenRecv, a.tokenExp
		a.mu.Unlock()
		delay := max(exp.Sub(recv)/2-a.clk.Now().Sub(recv), 0)
		select {
		case <-ctx.Done():
			return
		case <-a.clk.After(delay):
		case <-a.refreshNow:
		}
		for {
			err := a.refresh(ctx)
			a.met.tokens.WithLabelValues("refresh", result(err)).Inc()
			if err == nil {
				retry = time.Second
				break
			}
			if ctx.Err() != nil {
				return
			}
			a.mu.Lock()
			exp := a.tokenExp
			a.mu.Unlock()
			if a.clk.Now().After(exp) {
				a.log.Error("token refresh failed and the dataplane token has expired; Envoy cannot reconnect to the control plane until a refresh succeeds", "error", err, "retryIn", retry)
			} else {
				a.log.Warn("token refresh failed; keeping the current token", "error", err, "expiresAt", exp, "retryIn", retry)
			}
			select {
			case <-ctx.Done():
				return
			case <-a.clk.After(retry):
			}
			retry = min(2*retry, 30*time.Second)
		}
	}
}

func (a *Agent) refresh(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if a.cfg.AuthType == AuthNone || a.rejoin.Load() {
		a.mu.Lock()
		task := a.task
		a.mu.Unlock()
		resp, err := a.bootstrapOnce(cctx, task)
		if err != nil {
			return err
		}
		if err := a.setToken(resp.Token, resp.ExpiresAt); err != nil {
			return err
		}
		if a.rejoin.CompareAndSwap(true, false) {
			a.log.Info("registered the Dataplane again", "expiresAt", resp.ExpiresAt)
		}
		return nil
	}
	login, err := a.cfg.Login(cctx)
	if err != nil {
		return fmt.Errorf("agent: signing the IAM login with the task role: %w", err)
	}
	var resp dpapi.LoginResponse
	req := dpapi.LoginRequest{Mesh: a.dp.Mesh, Name: a.dp.Name, ProxyType: a.cfg.ProxyType, LoginToken: login}
	if err := a.cp.post(cctx, dpapi.PathLogin, "", req, &resp); err != nil {
		return err
	}
	if resp.Token == "" {
		return errors.New("agent: the control plane's login answer has no token")
	}
	if err := a.setToken(resp.Token, resp.ExpiresAt); err != nil {
		return err
	}
	a.log.Info("dataplane token refreshed", "expiresAt", resp.ExpiresAt)
	return nil
}

// healthLoop reports the app containers' health every HealthInterval.
func (a *Agent) healthLoop(ctx context.Context) {
	lastErr := ""
	for {
		err := a.syncOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			a.log.Warn("health sync failed", "error", err)
			lastErr = msg
		} else if err == nil && lastErr != "" {
			a.log.Info("health sync recovered")
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clk.After(a.cfg.HealthInterval):
		}
	}
}

func (a *Agent) syncOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	task, err := a.cfg.Metadata.TaskOnce(cctx)
	if err != nil {
		return fmt.Errorf("agent: reading task health: %w", err)
	}
	ready := appsReady(task, a.self)
	a.mu.Lock()
	changed := ready != a.ready
	a.ready = ready
	a.mu.Unlock()
	if changed {
		a.log.Info("app health changed", "ready", ready)
	}
	return a.syncHealth(cctx, ready, false)
}

// syncHealth sends one health sync; a 401 asks for a token refresh.
func (a *Agent) syncHealth(ctx context.Context, ready, draining bool) error {
	a.mu.Lock()
	dp := a.dp
	a.mu.Unlock()
	req := dpapi.HealthSyncRequest{Mesh: dp.Mesh, Name: dp.Name, Ready: ready, Draining: draining}
	var resp dpapi.HealthSyncResponse
	err := a.cp.post(ctx, dpapi.PathHealthSync, a.currentToken(), req, &resp)
	a.met.healthSyncs.WithLabelValues(result(err)).Inc()
	if err == nil {
		a.applyMetrics(resp.Metrics)
	}
	var ce *CPError
	if errors.As(err, &ce) && (ce.Status == 401 || ce.Status == 404) {
		if ce.Status == 404 && !draining && a.rejoin.CompareAndSwap(false, true) {
			a.log.Warn("the control plane no longer has this Dataplane; registering again")
		}
		select {
		case a.refreshNow <- struct{}{}:
		default:
		}
	}
	return err
}

// applyMetrics makes the metrics endpoint follow what the CP sent; a
// failure (the port is taken) is logged when it changes and retried with
// the next sync.
func (a *Agent) applyMetrics(m *dpapi.Metrics) {
	a.mu.Lock()
	same := reflect.DeepEqual(m, a.metricsOn) && a.metricErr == ""
	a.mu.Unlock()
	if same {
		return
	}
	err := a.metrics.Apply(m)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if msg := err.Error(); msg != a.metricErr {
			a.log.Warn("cannot serve the MeshMetric endpoint; retrying with the next health sync", "error", err)
			a.metricErr = msg
		}
		a.metricsOn = nil
		return
	}
	if a.metricErr != "" {
		a.log.Info("serving the MeshMetric endpoint again")
	}
	a.metricsOn, a.metricErr = m, ""
}
