package vip

import (
	"context"
	"math/big"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	allocatedDesc = prometheus.NewDesc("ecsmesh_vip_allocated", "VIPs allocated to services, all meshes, read from the store at scrape time.", nil, nil)
	poolDesc      = prometheus.NewDesc("ecsmesh_vip_pool_size", "Addresses in the VIP ranges (KUMA_IPAM_MESH_SERVICE_CIDR).", nil, nil)
)

// Collector reports VIP pool usage.
func (a *Allocator) Collector() prometheus.Collector { return poolCollector{a} }

type poolCollector struct{ a *Allocator }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- allocatedDesc; ch <- poolDesc }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, poolSize(c.a.ranges))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	vips, err := ListAll(ctx, c.a.st)
	if err != nil {
		c.a.log.Warn("vip: listing VIPs for metrics", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(allocatedDesc, prometheus.GaugeValue, float64(len(vips)))
}

// poolSize counts the addresses of the ranges.
func poolSize(ranges []netip.Prefix) float64 {
	total := new(big.Int)
	for _, p := range ranges {
		total.Add(total, new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits())))
	}
	f, _ := new(big.Float).SetInt(total).Float64()
	return f
}
