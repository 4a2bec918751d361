package cp

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/api/validation"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/election"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
)

// LeaseDNS is the lease the VIP allocator and Route53 writer run under.
const LeaseDNS = "dns-writer"

// leaseTTL is how long a leader may be gone before another replica takes over.
const leaseTTL = 15 * time.Second

// runDNS allocates VIPs and, with Route53 on, writes the records — only on
// the replica that holds the dns-writer lease.
func (s *Server) runDNS(ctx context.Context) error {
	ranges := []netip.Prefix{s.cfg.ServiceCIDRPrefix()}
	alloc, err := vip.NewAllocator(s.store, ranges, s.log.With("component", "vip"))
	if err != nil {
		return fmt.Errorf("starting VIP allocator: %w", err)
	}
	s.register("vip", []prometheus.Collector{alloc.Collector()})
	opts := dns.Options{
		Domain:            s.cfg.DNS.Domain,
		HostedZoneID:      s.cfg.Route53.HostedZoneID,
		RefreshInterval:   s.cfg.Route53.RefreshInterval,
		RequestsPerSecond: s.cfg.Route53.RequestsPerSecond,
		OwnerID:           s.cfg.Route53.OwnerID,
		VIPRanges:         ranges,
		RecordQuota:       s.cfg.Route53.RecordQuota,
		Logger:            s.log.With("component", "dns"),
	}
	if p, err := netip.ParsePrefix(s.cfg.DNS.ExternalServiceCIDR); err == nil {
		opts.VIPRanges = append([]netip.Prefix{ranges[0]}, p.Masked()) // external services' records are ours too
	}
	var writer *dns.Writer
	if s.cfg.Route53.Enabled {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("loading AWS configuration for Route53: %w", err)
		}
		writer = dns.NewWriter(dns.NewRoute53Client(awsCfg), opts)
		s.register("dns", writer.Collectors())
	}
	rec := dns.NewReconciler(s.store, alloc, writer, opts)
	s.mu.Lock()
	s.dns = rec
	s.mu.Unlock()
	el, err := election.New(election.Config{
		Leaser: s.store, Name: LeaseDNS, Holder: s.cfg.InstanceID, TTL: leaseTTL,
		Logger: s.log.With("component", "election"),
	})
	if err != nil {
		return err
	}
	return el.Run(ctx, func(ctx context.Context) {
		s.log.Info("leading: VIP allocation and Route53 records", "route53", s.cfg.Route53.Enabled)
		if err := rec.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("DNS reconciler stopped", "error", err)
		}
	}, func() { s.log.Info("no longer leading VIP allocation and Route53") })
}

// hostnameCheck refuses, at apply time, a HostnameGenerator whose template
// fails for a service it selects.
func hostnameCheck(ctx context.Context, st store.Store, obj resource.Object) (*validation.Error, error) {
	gen, ok := obj.(*resource.HostnameGenerator)
	if !ok {
		return nil, nil
	}
	return dns.ValidateGenerator(ctx, st, gen)
}

// DNSStatus returns the reconciler's status (nil before it starts).
func (s *Server) DNSStatus() *dns.Status {
	s.mu.Lock()
	rec := s.dns
	s.mu.Unlock()
	if rec == nil {
		return nil
	}
	st := rec.Status()
	return &st
}
