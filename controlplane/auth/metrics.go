package auth

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	logins      *prometheus.CounterVec
	roleLookups *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_logins_total",
			Help: "IAM logins by result (success, refused, unavailable, error) and reason code.",
		}, []string{"result", "reason"}),
		roleLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_login_role_cache_total",
			Help: "iam:GetRole cache lookups during IAM logins, by result (hit, miss).",
		}, []string{"result"}),
	}
}

func (m *metrics) observe(err error) {
	if err == nil {
		m.logins.WithLabelValues("success", "").Inc()
		return
	}
	p := asProblem(err)
	if p == nil {
		m.logins.WithLabelValues("error", ReasonInternal).Inc()
		return
	}
	result := "refused"
	switch {
	case p.Status == 503:
		result = "unavailable"
	case p.Status >= 500:
		result = "error"
	}
	m.logins.WithLabelValues(result, p.Reason).Inc()
}

func (m *metrics) roleCache(hit bool) {
	if hit {
		m.roleLookups.WithLabelValues("hit").Inc()
	} else {
		m.roleLookups.WithLabelValues("miss").Inc()
	}
}

// Collectors returns the Verifier's prometheus collectors for the CP to
// register: ecsmesh_logins_total{result,reason} and
// ecsmesh_login_role_cache_total{result}.
func (v *Verifier) Collectors() []prometheus.Collector {
	return []prometheus.Collector{v.metrics.logins, v.metrics.roleLookups}
}
