package ca

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

var rootExpiry = prometheus.NewDesc("ecsmesh_ca_root_expiry_timestamp_seconds",
	"When each mesh's active CA root certificate expires (Unix seconds), read from the store at scrape time.", []string{"mesh"}, nil)

// Collector reports the expiry of every mesh's active root.
func (a *Authority) Collector() prometheus.Collector { return rootCollector{a} }

type rootCollector struct{ a *Authority }

func (c rootCollector) Describe(ch chan<- *prometheus.Desc) { ch <- rootExpiry }

func (c rootCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	recs, err := c.a.store.List(ctx, KindCA, store.ListOptions{})
	if err != nil {
		c.a.log.Warn("ca: listing roots for metrics", "error", err)
		return
	}
	for _, r := range recs {
		roots, err := parseDoc(r)
		if err != nil || len(roots) == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(rootExpiry, prometheus.GaugeValue, float64(roots[0].cert.NotAfter.Unix()), r.Mesh)
	}
}
