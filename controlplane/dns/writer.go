package dns

import (
	"context"
	"errors"
	"fmt"
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

// Writer makes a Route53 hosted zone hold the desired A records. Only the
// leader runs one. Its methods are not meant to run concurrently.
type Writer struct {
	api  Route53API
	o    Options
	lim  *rate.Limiter
	zone string // normalized zone name, known after CheckZone

	mu    sync.Mutex
	calls map[string]int64
}

// NewWriter returns a writer for o.HostedZoneID.
func NewWriter(api Route53API, o Options) *Writer {
	o = o.withDefaults()
	return &Writer{api: api, o: o, lim: rate.NewLimiter(rate.Limit(o.RequestsPerSecond), 1), calls: map[string]int64{}}
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
}

// Sync lists the zone, plans and applies the changes that make it hold
// desired. When the plan is empty it sends no write.
func (w *Writer) Sync(ctx context.Context, desired []Record) (Result, error) {
	want := make(map[string]string, len(desired))
	for _, r := range desired {
		want[r.Name] = r.VIP.String()
	}
	current, err := w.List(ctx)
	if err != nil {
		return Result{}, err
	}
	plan := PlanChanges(want, current, w.o.OwnerID, w.o.TTL)
	res := Result{Conflicts: plan.Conflicts}
	if plan.Empty() {
		return res, nil
	}
	batches, err := Batches(plan.Units, w.o.Limits)
	if err != nil {
		return res, err
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
			return res, fmt.Errorf("dns: applying change batch %d of %d (%d changes): %w", i+1, len(batches), len(b), err)
		}
		res.Requests++
		res.Changes += len(b)
	}
	w.o.Logger.Info("dns: Route53 zone updated", "zone", id, "changes", res.Changes, "requests", res.Requests)
	return res, nil
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
		if err == nil || !Retryable(err) || attempt == maxAttempts {
			return err
		}
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
