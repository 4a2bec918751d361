package dns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// Route53 actions, as counted by Writer.Calls.
const (
	ActionGetHostedZone            = "GetHostedZone"
	ActionListResourceRecordSets   = "ListResourceRecordSets"
	ActionChangeResourceRecordSets = "ChangeResourceRecordSets"
)

// maxAttempts bounds the retries of one request; the next pass tries again.
const maxAttempts = 8

// ErrZone is wrapped by CheckZone's errors: the hosted zone is missing,
// public, or does not hold the domain.
var ErrZone = errors.New("dns: Route53 hosted zone unusable")

// ErrOwnerConflict is wrapped by Sync's error when a domain this
// deployment needs is claimed by another owner ID.
var ErrOwnerConflict = errors.New("dns: domain claimed by another ecsmesh deployment")

// Writer makes a Route53 hosted zone hold the desired A records. Only the
// leader runs one. Its methods are not meant to run concurrently.
type Writer struct {
	api     Route53API
	o       Options
	lim     *rate.Limiter
	zone    string // normalized zone name, known after CheckZone
	metrics *metrics
	warned  bool // the quota warning was logged and still holds

	mu    sync.Mutex
	calls map[string]int64
}

// NewWriter returns a writer for o.HostedZoneID.
func NewWriter(api Route53API, o Options) *Writer {
	o = o.withDefaults()
	return &Writer{api: api, o: o, lim: rate.NewLimiter(rate.Limit(o.RequestsPerSecond), 1), calls: map[string]int64{}, metrics: newMetrics()}
}

// Zone returns the zone's name (after CheckZone).
func (w *Writer) Zone() string { return w.zone }

// Calls returns how many requests of each action were sent (retries
// included).
func (w *Writer) Calls() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int64, len(w.calls))
	for k, v := range w.calls {
		out[k] = v
	}
	return out
}

// CheckZone verifies that the hosted zone exists, is private and holds
// the domain. The writer must not run otherwise.
func (w *Writer) CheckZone(ctx context.Context) error {
	id := resource.NormalizeZoneID(w.o.HostedZoneID)
	if id == "" {
		return fmt.Errorf("%w: KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID is not set", ErrZone)
	}
	if len(w.o.VIPRanges) == 0 {
		return fmt.Errorf("%w: no VIP range (KUMA_IPAM_MESH_SERVICE_CIDR): the writer infers which A records it owns from their values", ErrZone)
	}
	var out *route53.GetHostedZoneOutput
	err := w.do(ctx, ActionGetHostedZone, func() (err error) {
		out, err = w.api.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(id)})
		return err
	})
	if err != nil {
		var nf *types.NoSuchHostedZone
		if errors.As(err, &nf) {
			return fmt.Errorf("%w: hosted zone %s does not exist (KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID): %w", ErrZone, id, err)
		}
		return fmt.Errorf("dns: getting hosted zone %s: %w", id, err)
	}
	hz := out.HostedZone
	if hz == nil {
		return fmt.Errorf("%w: GetHostedZone %s returned no zone", ErrZone, id)
	}
	if hz.Config == nil || !hz.Config.PrivateZone {
		return fmt.Errorf("%w: hosted zone %s (%s) is public; ecsmesh publishes loopback VIPs only into a private hosted zone", ErrZone, id, aws.ToString(hz.Name))
	}
	w.zone = NormalizeName(aws.ToString(hz.Name))
	if w.o.Domain != "" && !InZone(NormalizeName(w.o.Domain), w.zone) {
		return fmt.Errorf("%w: KUMA_DNS_SERVER_DOMAIN %s is not inside hosted zone %s (%s)", ErrZone, w.o.Domain, id, w.zone)
	}
	return nil
}

// Result says what one Sync did.
type Result struct {
	// Changes is the number of record changes written.
	Changes int
	// Requests is the number of change requests sent (retries excluded).
	Requests int
	// Conflicts are desired names left alone.
	Conflicts []Conflict
	// OwnerConflicts are the domains refused because another owner ID
	// claims them.
	OwnerConflicts []OwnerConflict
	// Footprint is the zone as planned after this pass (as listed when a
	// request failed).
	Footprint Footprint
	// Services counts the services with desired records, and
	// RecordsPerService is Footprint.Owned() per such service.
	Services          int
	RecordsPerService float64
	// QuotaWarning is true when the zone holds at least QuotaWarnRatio of
	// its record quota, or names were left out to stay within it.
	QuotaWarning bool
}

// Sync lists the zone, plans and applies the changes that make it hold
// desired. When the plan is empty it sends no write. A domain claimed by
// another owner ID is left untouched and reported in an error wrapping
// ErrOwnerConflict (the other domains are still written).
func (w *Writer) Sync(ctx context.Context, desired []Record) (res Result, err error) {
	want := make(map[string]string, len(desired))
	services := map[string]bool{}
	for _, r := range desired {
		want[r.Name] = r.VIP.String()
		services[r.Mesh+"/"+r.Service] = true
	}
	current, err := w.List(ctx)
	if err != nil {
		return Result{}, err
	}
	plan := PlanChanges(PlanInput{Desired: want, Current: current, Owner: w.o.OwnerID, TTL: w.o.TTL,
		Domain: w.o.Domain, Zone: w.zone, VIPRanges: w.o.VIPRanges})
	skipped := w.withinQuota(&plan)
	res = Result{Conflicts: plan.Conflicts, OwnerConflicts: plan.OwnerConflicts, Footprint: plan.Before, Services: len(services)}
	ownerErr := w.ownerConflicts(plan.OwnerConflicts)
	defer func() { w.report(&res, skipped) }() // res is the named result: the report reaches the caller
	if plan.Empty() {
		res.Footprint = plan.After
		return res, ownerErr
	}
	batches, err := Batches(plan.Units, w.o.Limits)
	if err != nil {
		return res, errors.Join(err, ownerErr)
	}
	id := resource.NormalizeZoneID(w.o.HostedZoneID)
	for i, b := range batches {
		in := &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(id),
			ChangeBatch: &types.ChangeBatch{Changes: b, Comment: aws.String("ecsmesh owner=" + w.o.OwnerID)}}
		err := w.do(ctx, ActionChangeResourceRecordSets, func() error {
			_, err := w.api.ChangeResourceRecordSets(ctx, in)
			return err
		})
		if err != nil {
			return res, errors.Join(fmt.Errorf("dns: applying change batch %d of %d (%d changes): %w", i+1, len(batches), len(b), err), ownerErr)
		}
		res.Requests++
		res.Changes += len(b)
	}
	res.Footprint = plan.After
	w.o.Logger.Info("dns: Route53 zone updated", "zone", id, "changes", res.Changes, "requests", res.Requests,
		"records", plan.After.Zone, "ecsmeshRecords", plan.After.Owned())
	return res, ownerErr
}

// withinQuota drops, in order, the units that would take the zone past its
// record quota (reporting them as conflicts) and returns how many units
// were left out. When a claim does not fit, nothing after it is written:
// the names under an unwritten claim are not ours to change.
func (w *Writer) withinQuota(p *Plan) int {
	count, skipped := p.Before.Zone, 0
	kept := p.Units[:0]
	claimLeftOut := false
	for _, u := range p.Units {
		if claimLeftOut {
			skipped++
			p.Conflicts = append(p.Conflicts, Conflict{Name: u.Name, Reason: fmt.Sprintf(
				"not written: a domain claim did not fit in the hosted zone's quota of %d record sets; raise the quota with AWS, then ECSMESH_ROUTE53_RECORD_QUOTA", w.o.RecordQuota)})
			continue
		}
		d := 0
		for _, c := range u.Changes {
			switch c.Action {
			case types.ChangeActionCreate:
				d++
			case types.ChangeActionDelete:
				d--
			}
		}
		if d > 0 && count+d > w.o.RecordQuota {
			claimLeftOut = strings.HasPrefix(u.Name, ClaimPrefix)
			skipped++
			p.Conflicts = append(p.Conflicts, Conflict{Name: u.Name, Reason: fmt.Sprintf(
				"not written: the hosted zone would exceed its quota of %d record sets; raise the quota with AWS, then ECSMESH_ROUTE53_RECORD_QUOTA", w.o.RecordQuota)})
			continue
		}
		count += d
		kept = append(kept, u)
	}
	p.Units = kept
	p.After = footprintAfter(*p)
	return skipped
}

// ownerConflicts counts and explains the refused domains.
func (w *Writer) ownerConflicts(ocs []OwnerConflict) error {
	if len(ocs) == 0 {
		return nil
	}
	var errs []error
	for _, oc := range ocs {
		reason := "claimed"
		if oc.ClaimedDomain != oc.Domain {
			reason = "overlap"
		}
		w.metrics.conflicts.WithLabelValues(reason).Inc()
		owner := fmt.Sprintf("owner ID %q", oc.Owner)
		if oc.Owner == "" {
			owner = "a TXT record that is not this deployment's claim"
		}
		errs = append(errs, fmt.Errorf("%w: domain %s in hosted zone %s is claimed by %s (TXT %s), not by this deployment's owner ID %q (ECSMESH_ROUTE53_OWNER_ID); no record under %s is written or deleted. "+
			"If both control planes are one deployment, give them the same ECSMESH_ROUTE53_OWNER_ID; if the other deployment is gone, delete that TXT record; otherwise give this one another KUMA_DNS_SERVER_DOMAIN or hosted zone",
			ErrOwnerConflict, oc.Domain, resource.NormalizeZoneID(w.o.HostedZoneID), owner, ClaimName(oc.ClaimedDomain), w.o.OwnerID, oc.Domain))
	}
	return errors.Join(errs...)
}

// report sets the footprint metrics and logs the quota warning when it
// starts to hold.
func (w *Writer) report(res *Result, skipped int) {
	if res.Services > 0 {
		res.RecordsPerService = float64(res.Footprint.Owned()) / float64(res.Services)
	}
	res.QuotaWarning = skipped > 0 || float64(res.Footprint.Zone) >= QuotaWarnRatio*float64(w.o.RecordQuota)
	if res.QuotaWarning && !w.warned {
		w.o.Logger.Warn("dns: the hosted zone nears its record quota; ask AWS for a higher quota and set ECSMESH_ROUTE53_RECORD_QUOTA",
			"records", res.Footprint.Zone, "quota", w.o.RecordQuota, "namesLeftOut", skipped)
	}
	w.warned = res.QuotaWarning
	w.metrics.set(footprintReport{after: res.Footprint, quota: w.o.RecordQuota, warning: res.QuotaWarning,
		refused: len(res.OwnerConflicts), recordsPerService: res.RecordsPerService})
}

// List returns every record set of the zone, following pagination.
func (w *Writer) List(ctx context.Context) ([]types.ResourceRecordSet, error) {
	id := resource.NormalizeZoneID(w.o.HostedZoneID)
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(id), MaxItems: aws.Int32(w.o.ListPageSize)}
	var out []types.ResourceRecordSet
	for {
		var page *route53.ListResourceRecordSetsOutput
		err := w.do(ctx, ActionListResourceRecordSets, func() (err error) {
			page, err = w.api.ListResourceRecordSets(ctx, in)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("dns: listing hosted zone %s: %w", id, err)
		}
		out = append(out, page.ResourceRecordSets...)
		if !page.IsTruncated {
			return out, nil
		}
		in = &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(id), MaxItems: in.MaxItems,
			StartRecordName: page.NextRecordName, StartRecordType: page.NextRecordType, StartRecordIdentifier: page.NextRecordIdentifier}
	}
}

// Retryable reports whether err is one the writer waits out: Throttling
// and PriorRequestNotComplete.
func Retryable(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded":
		return true
	}
	return false
}

// do sends one request under the rate limiter, retrying with exponential
// backoff while AWS throttles.
func (w *Writer) do(ctx context.Context, action string, call func() error) error {
	backoff := w.o.InitialBackoff
	for attempt := 1; ; attempt++ {
		if err := w.wait(ctx); err != nil {
			return err
		}
		w.mu.Lock()
		w.calls[action]++
		w.mu.Unlock()
		err := call()
		result := "ok"
		switch {
		case err != nil && Retryable(err):
			result = "throttled"
		case err != nil:
			result = "error"
		}
		w.metrics.calls.WithLabelValues(action, result).Inc()
		if err == nil || !Retryable(err) || attempt == maxAttempts {
			return err
		}
		w.metrics.throttled.WithLabelValues(action).Inc()
		w.o.Logger.Warn("dns: Route53 asks to slow down; backing off", "action", action, "backoff", backoff, "error", err)
		if err := w.sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, w.o.MaxBackoff)
	}
}

// wait blocks until the rate limiter allows one request.
func (w *Writer) wait(ctx context.Context) error {
	now := w.o.Clock.Now()
	r := w.lim.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("dns: rate limiter refuses every request")
	}
	if err := w.sleep(ctx, r.DelayFrom(now)); err != nil {
		r.CancelAt(w.o.Clock.Now())
		return err
	}
	return nil
}

func (w *Writer) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.o.Clock.After(d):
		return nil
	}
}
