package agent

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/bootstrap/metrics"
)

// agentMetrics are the agent's own series, served on the sidecar's
// metrics endpoint with Envoy's.
type agentMetrics struct {
	reg *prometheus.Registry
	// tokens counts /bootstrap and login calls by call (bootstrap,
	// refresh) and result (ok, refused, unavailable).
	tokens *prometheus.CounterVec
	// tokenExpiry is the current dataplane token's expiry (Unix seconds).
	tokenExpiry prometheus.Gauge
	// envoyStarts counts Envoy starts; the agent exits when Envoy does,
	// so a restart of the sidecar container shows as a reset to 1.
	envoyStarts prometheus.Counter
	// healthSyncs counts health syncs by result.
	healthSyncs *prometheus.CounterVec
}

func newAgentMetrics() *agentMetrics {
	m := &agentMetrics{
		reg: prometheus.NewRegistry(),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_dp_token_requests_total",
			Help: "Dataplane token requests to the control plane by call (bootstrap, refresh) and result (ok, refused, unavailable).",
		}, []string{"call", "result"}),
		tokenExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecsmesh_dp_token_expiry_timestamp_seconds",
			Help: "When the agent's current dataplane token expires (Unix seconds).",
		}),
		envoyStarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecsmesh_dp_envoy_starts_total",
			Help: "Envoy processes the agent started.",
		}),
		healthSyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_dp_health_syncs_total",
			Help: "Health syncs with the control plane by result (ok, refused, unavailable).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.tokens, m.tokenExpiry, m.envoyStarts, m.healthSyncs)
	return m
}

// result classifies a call's error: ok, refused (the CP answered 4xx) or
// unavailable (no answer, 5xx).
func result(err error) string {
	var ce *CPError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 && ce.Status != 429:
		return "refused"
	}
	return "unavailable"
}

func (m *agentMetrics) tokenSet(exp time.Time) {
	m.tokenExpiry.Set(float64(exp.Unix()))
}

// newMetricsServer builds the metrics endpoint over the agent's registry.
func (a *Agent) newMetricsServer() (*metrics.Server, error) {
	return metrics.New(metrics.Config{
		Gatherer: a.met.reg, Registerer: a.met.reg,
		AdminPort: func() int {
			a.mu.Lock()
			defer a.mu.Unlock()
			if !a.envoyUp {
				return 0
			}
			return a.adminPort
		},
		Listen: a.cfg.MetricsListen,
		Logger: a.log,
	})
}

// MetricsAddr is the address the MeshMetric endpoint listens on, "" when
// the control plane configured none.
func (a *Agent) MetricsAddr() string { return a.metrics.Addr() }
