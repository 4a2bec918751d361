package dns

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the writer's Prometheus collectors.
type metrics struct {
	conflicts *prometheus.CounterVec
	// calls counts Route53 requests by action and result (ok, throttled,
	// error).
	calls     *prometheus.CounterVec
	throttled *prometheus.CounterVec

	mu   sync.Mutex
	last footprintReport
}

// footprintReport is what the gauges show: the last pass's outcome.
type footprintReport struct {
	after             Footprint
	quota             int
	warning           bool
	refused           int
	recordsPerService float64
}

func newMetrics() *metrics {
	return &metrics{
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_dns_owner_conflicts_total",
			Help: "Passes that found a domain this deployment needs claimed by another owner ID (nothing under it was written), by reason (claimed: the same domain; overlap: a parent or subdomain).",
		}, []string{"reason"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_dns_route53_requests_total",
			Help: "Route53 API requests, by action (ListResourceRecordSets, ChangeResourceRecordSets) and result (ok, throttled: Route53 asked to slow down and the writer backed off, error).",
		}, []string{"action", "result"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_dns_route53_throttled_total",
			Help: "Route53 requests answered with a throttling or prior-request-not-complete error (each is retried after a backoff), by action.",
		}, []string{"action"}),
	}
}

func (m *metrics) set(r footprintReport) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = r
}

func (m *metrics) get() footprintReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (m *metrics) gauge(name, help string, f func(r footprintReport) float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(m.get()) })
}

// Collectors returns the writer's metrics for the CP's registry: the
// zone's record sets and quota, the quota warning, ecsmesh's records (A,
// domain claims, legacy marks), records per service, owner conflicts and
// throttled requests.
func (w *Writer) Collectors() []prometheus.Collector {
	m := w.metrics
	owned := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ecsmesh_dns_owned_records",
		Help: "Record sets ecsmesh keeps in the hosted zone after the last pass, by kind (a, claim, legacy)."}, []string{"kind"})
	return []prometheus.Collector{
		m.conflicts, m.calls, m.throttled,
		m.gauge("ecsmesh_dns_zone_records", "Record sets in the hosted zone after the last pass (every owner's, SOA and NS included).",
			func(r footprintReport) float64 { return float64(r.after.Zone) }),
		m.gauge("ecsmesh_dns_zone_record_quota", "The hosted zone's record set quota (ECSMESH_ROUTE53_RECORD_QUOTA).",
			func(r footprintReport) float64 { return float64(r.quota) }),
		m.gauge("ecsmesh_dns_zone_quota_warning", "1 when the hosted zone holds at least 90% of its record quota or names were left out to stay within it; raise the quota with AWS and ECSMESH_ROUTE53_RECORD_QUOTA.",
			func(r footprintReport) float64 { return b2f(r.warning) }),
		m.gauge("ecsmesh_dns_refused_domains", "Domains this deployment needs that another owner ID claims (see ecsmesh_dns_owner_conflicts_total and the CP log).",
			func(r footprintReport) float64 { return float64(r.refused) }),
		m.gauge("ecsmesh_dns_records_per_service", "Record sets ecsmesh keeps in the zone (A records, claims, legacy marks) per service with records, after the last pass.",
			func(r footprintReport) float64 { return r.recordsPerService }),
		ownedCollector{m: m, desc: owned},
	}
}

// ownedCollector reports ecsmesh_dns_owned_records from the last pass.
type ownedCollector struct {
	m    *metrics
	desc *prometheus.GaugeVec
}

func (c ownedCollector) Describe(ch chan<- *prometheus.Desc) { c.desc.Describe(ch) }

func (c ownedCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.m.get()
	c.desc.WithLabelValues("a").Set(float64(r.after.A))
	c.desc.WithLabelValues("claim").Set(float64(r.after.Claims))
	c.desc.WithLabelValues("legacy").Set(float64(r.after.Legacy))
	c.desc.Collect(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
