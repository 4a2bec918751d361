// Package dns publishes the services' loopback VIPs under DNS names in a
// Route53 private hosted zone.
//
// Hostnames are <service>.<KUMA_DNS_SERVER_DOMAIN> plus every matching
// HostnameGenerator's. The Reconciler watches the store, gives every
// service a VIP (package vip) and drives the Writer, which works like
// external-dns: it lists the zone, plans the difference (PlanChanges),
// writes only under the domains it claims (one TXT record
// _ecsmesh-owner.<domain> "heritage=ecsmesh,owner=<owner>" per domain; an
// A record is ours when it lies under a claimed domain and its values are
// VIPs), refuses a domain another owner claims, batches the changes within
// Route53's limits (Batches), stays under a client-side rate limit and
// backs off on Throttling and PriorRequestNotComplete. When nothing
// changed it only lists.
package dns

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
)

// Defaults of Options.
const (
	DefaultRefreshInterval   = 10 * time.Second
	DefaultDebounce          = time.Second
	DefaultRequestsPerSecond = 5.0
	DefaultTTL               = 10
	DefaultOwnerID           = "default"
	DefaultMaxBackoff        = 30 * time.Second
	DefaultInitialBackoff    = time.Second
	// DefaultListPageSize is Route53's largest ListResourceRecordSets page.
	DefaultListPageSize = 300
	// DefaultRecordQuota is Route53's default quota of record sets per
	// hosted zone.
	DefaultRecordQuota = 10000
	// QuotaWarnRatio is the share of the record quota from which the
	// writer warns (log and ecsmesh_dns_zone_quota_warning).
	QuotaWarnRatio = 0.9
)

// Route53API is the part of *route53.Client the writer uses. Build the
// client with NewRoute53Client so that the SDK does not retry on its own:
// the writer's rate limiter must see every request.
type Route53API interface {
	GetHostedZone(ctx context.Context, in *route53.GetHostedZoneInput, optFns ...func(*route53.Options)) (*route53.GetHostedZoneOutput, error)
	ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, optFns ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
	ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, optFns ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
}

var _ Route53API = (*route53.Client)(nil)

// NewRoute53Client returns a Route53 client for cfg (which honours
// AWS_ENDPOINT_URL_ROUTE_53) with the SDK's retries off: the writer
// retries itself, under its rate limiter.
func NewRoute53Client(cfg aws.Config, optFns ...func(*route53.Options)) *route53.Client {
	fns := append([]func(*route53.Options){func(o *route53.Options) { o.Retryer = aws.NopRetryer{} }}, optFns...)
	return route53.NewFromConfig(cfg, fns...)
}

// Clock is the time source; tests inject their own. Nil means the real
// clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure the Writer and the Reconciler. Zero fields take the
// defaults above.
type Options struct {
	// Domain is KUMA_DNS_SERVER_DOMAIN: services are <service>.<Domain>.
	Domain string
	// HostedZoneID is KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID.
	HostedZoneID string
	// RefreshInterval is KMESH_RUNTIME_AWS_ROUTE53_REFRESH_INTERVAL: how
	// often the zone is listed and reconciled even without store changes.
	RefreshInterval time.Duration
	// Debounce is how long store changes must be quiet before a pass, so
	// that one apply of many services is written in one planned pass.
	Debounce time.Duration
	// RequestsPerSecond is the client-side Route53 rate limit (AWS allows
	// 5 per second per account).
	RequestsPerSecond float64
	// OwnerID identifies this control plane deployment in its domain
	// claims. Every replica of one deployment must share it (so a new
	// leader owns what the old one wrote); two deployments writing one
	// zone must not.
	OwnerID string
	// VIPRanges are the mesh's VIP ranges (KUMA_IPAM_MESH_SERVICE_CIDR,
	// KUMA_IPAM_MESH_EXTERNAL_SERVICE_CIDR): an A record under a claimed
	// domain is ours only when its values lie in them. The writer refuses
	// to run without them.
	VIPRanges []netip.Prefix
	// RecordQuota is the hosted zone's quota of record sets
	// (ECSMESH_ROUTE53_RECORD_QUOTA): the writer warns from QuotaWarnRatio
	// of it and never plans past it.
	RecordQuota int
	// TTL of the records, seconds.
	TTL int64
	// Limits of one change request; zero means Route53's.
	Limits Limits
	// ListPageSize is MaxItems of ListResourceRecordSets.
	ListPageSize int32
	// InitialBackoff and MaxBackoff bound the waits after Throttling and
	// PriorRequestNotComplete.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Clock and Logger are injected; nil means the real clock and a
	// discarding logger.
	Clock  Clock
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.RequestsPerSecond <= 0 {
		o.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if o.OwnerID == "" {
		o.OwnerID = DefaultOwnerID
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Limits.Records <= 0 || o.Limits.ValueChars <= 0 {
		o.Limits = DefaultLimits
	}
	if o.RecordQuota <= 0 {
		o.RecordQuota = DefaultRecordQuota
	}
	if o.ListPageSize <= 0 {
		o.ListPageSize = DefaultListPageSize
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
