package xds

import (
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons counted in ecsmesh_xds_streams_refused_total.
const (
	refusedNoToken      = "no_bearer_token"
	refusedInvalidToken = "invalid_token"
	refusedNodeMismatch = "node_id_mismatch"
	refusedNotStored    = "dataplane_not_found"
	refusedNoNode       = "no_node"
	refusedNoIdentity   = "identity_unavailable"
	// The token does not match the stored Dataplane (also counted in
	// ecsmesh_xds_streams_closed_by_cp_total when a rebuild breaks the
	// binding of an open stream).
	refusedSPIFFEMismatch    = "spiffe_id_mismatch"
	refusedProxyTypeMismatch = "proxy_type_mismatch"
	refusedOwnerMismatch     = "owner_mismatch"
	refusedRevoked           = "token_revoked"
)

// Reasons a stream is closed, counted in
// ecsmesh_xds_streams_closed_by_cp_total (besides the binding reasons
// above).
const (
	closedDeleted     = "dataplane_deleted"
	closedExpired     = "token_expired"
	closedRoleRevoked = "role_revoked"
)

// Results of a role re-check, counted in ecsmesh_xds_role_rechecks_total.
const (
	recheckOK          = "ok"
	recheckRevoked     = "revoked"
	recheckUnavailable = "unavailable"
)

// metrics are the xDS server's Prometheus collectors.
type metrics struct {
	refused *prometheus.CounterVec
	nacks   *prometheus.CounterVec
	closed  *prometheus.CounterVec
	recheck *prometheus.CounterVec
	// build is the time to generate one mesh and install it; push the
	// time from a store change to the new configuration in the cache;
	// sizes the bytes of each response, by type.
	build, push prometheus.Histogram
	buildFailed prometheus.Counter
	sizes       *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_xds_streams_refused_total",
			Help: "ADS streams refused, by reason (authentication, node ID, unknown dataplane, identity).",
		}, []string{"reason"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_xds_nacks_total",
			Help: "Responses a sidecar rejected (NACK), by resource type URL.",
		}, []string{"type"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_xds_streams_closed_by_cp_total",
			Help: "Streams the CP closed, by reason (dataplane or mesh deleted, token expired or revoked, binding to the Dataplane broken, role revoked).",
		}, []string{"reason"}),
		recheck: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecsmesh_xds_role_rechecks_total",
			Help: "Periodic re-checks of the IAM role of open streams, by result (ok, revoked: stream closed, unavailable: IAM unreachable, stream kept).",
		}, []string{"result"}),
		build: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ecsmesh_xds_build_seconds", Help: "Time to generate one mesh's configuration (every dataplane) and install it in the cache.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		push: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ecsmesh_xds_push_latency_seconds", Help: "Time from a store change reaching this replica to the new configuration being ready for the streams it affects.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		buildFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecsmesh_xds_build_failures_total", Help: "Mesh builds that failed; the sidecars keep the last good configuration.",
		}),
		sizes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ecsmesh_xds_response_size_bytes", Help: "Size of each xDS response sent, by resource type (listener, cluster, endpoint, secret, extension).",
			Buckets: prometheus.ExponentialBuckets(256, 4, 10),
		}, []string{"type"}),
	}
}

// typeLabels name the type URLs of responses in metric labels.
var typeLabels = map[string]string{
	resourcev3.ClusterType: "cluster", resourcev3.EndpointType: "endpoint", resourcev3.ListenerType: "listener",
	resourcev3.SecretType: "secret", resourcev3.ExtensionConfigType: "extension",
}

// shortType names a type URL for a label ("other" for types ecsmesh does
// not serve).
func shortType(typeURL string) string {
	if l, ok := typeLabels[typeURL]; ok {
		return l
	}
	return "other"
}

// Collectors returns the server's metrics for the CP's registry:
// connected dataplanes and streams, refusals, NACKs, closes, and bytes and
// messages sent.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		s.metrics.refused, s.metrics.nacks, s.metrics.closed, s.metrics.recheck,
		s.metrics.build, s.metrics.push, s.metrics.buildFailed, s.metrics.sizes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ecsmesh_xds_streams", Help: "Open ADS streams on this replica."},
			func() float64 { n, _ := s.streams.counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ecsmesh_xds_dataplanes_connected", Help: "Dataplanes with an ADS stream on this replica."},
			func() float64 { _, n := s.streams.counts(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ecsmesh_xds_response_bytes_total", Help: "Bytes of xDS responses sent."},
			func() float64 { return float64(s.sent.bytes.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ecsmesh_xds_responses_total", Help: "xDS responses sent."},
			func() float64 { return float64(s.sent.msgs.Load()) }),
	}
}
