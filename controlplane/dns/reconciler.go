package dns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
)

// Reconciler keeps VIPs and DNS records in step with the store: every
// stored service has a VIP and its records, whether or not its dataplanes
// are connected. Run it on the leader only (the VIP allocator is safe on
// any replica, but retiring and the Route53 writer must be unique).
type Reconciler struct {
	st     store.Store
	alloc  *vip.Allocator
	writer *Writer
	o      Options

	mu     sync.Mutex
	status Status
}

// Status is what the reconciler last did, for the admin API and inspect.
type Status struct {
	// Route53 is true while the writer is on.
	Route53 bool `json:"route53"`
	// Route53Error explains why the writer is off or why its last pass
	// failed.
	Route53Error string `json:"route53Error,omitempty"`
	// Zone is the hosted zone's name.
	Zone string `json:"zone,omitempty"`
	// LastPass is when the last pass ended; LastError its error.
	LastPass  time.Time `json:"lastPass"`
	LastError string    `json:"lastError,omitempty"`
	// Records are the desired A records, sorted by name.
	Records []Record `json:"records"`
	// Conflicts are the names not written and why.
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// OwnerConflicts are the domains another owner ID claims: nothing
	// under them is written.
	OwnerConflicts []OwnerConflict `json:"ownerConflicts,omitempty"`
	// Footprint is the zone's record sets after the last pass, and
	// RecordsPerService ecsmesh's share per service with records.
	Footprint         Footprint `json:"footprint"`
	RecordsPerService float64   `json:"recordsPerService"`
	// QuotaWarning is true when the zone nears its record quota.
	QuotaWarning bool `json:"quotaWarning,omitempty"`
	// Passes counts completed passes.
	Passes int64 `json:"passes"`
}

// NewReconciler returns a reconciler. writer may be nil when Route53 is
// off: VIPs are still allocated.
func NewReconciler(st store.Store, alloc *vip.Allocator, writer *Writer, o Options) *Reconciler {
	return &Reconciler{st: st, alloc: alloc, writer: writer, o: o.withDefaults()}
}

// Status returns a copy of the current status.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Records = append([]Record(nil), s.Records...)
	s.Conflicts = append([]Conflict(nil), s.Conflicts...)
	s.OwnerConflicts = append([]OwnerConflict(nil), s.OwnerConflicts...)
	return s
}

// Desired returns the A records the zone should hold, as of the last pass.
func (r *Reconciler) Desired() []Record { return r.Status().Records }

// relevant reports whether a change of kind may change VIPs or names.
func relevant(e store.Event) bool {
	switch e.Key.Kind {
	case resource.KindDataplane, resource.KindHostnameGenerator, resource.KindMesh:
		return true
	}
	return e.Op == 0 // resync marker
}

// Run reconciles until ctx ends: at start, after store changes (debounced)
// and every RefreshInterval. When the hosted zone check fails it logs a
// clear error and keeps allocating VIPs with the writer off. It returns
// ctx's error.
func (r *Reconciler) Run(ctx context.Context) error {
	log := r.o.Logger
	w := r.writer
	if w != nil {
		if err := w.CheckZone(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Error("dns: Route53 writer stays off while the CP runs", "error", err)
			r.setWriter(false, err.Error(), "")
			w = nil
		} else {
			r.setWriter(true, "", w.Zone())
		}
	}
	events, err := r.st.Watch(ctx)
	if err != nil {
		return fmt.Errorf("dns: watching the store: %w", err)
	}
	clock := r.o.Clock
	var (
		debounce <-chan time.Time // set while changes wait
		deadline time.Time        // latest pass time for pending changes
		refresh  = clock.After(0) // first pass at once
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				log.Warn("dns: store watch ended; watching again")
				if events, err = r.st.Watch(ctx); err != nil {
					return fmt.Errorf("dns: watching the store: %w", err)
				}
				debounce = clock.After(0) // changes may have been missed
				continue
			}
			if !relevant(e) {
				continue
			}
			now := clock.Now()
			if deadline.IsZero() {
				deadline = now.Add(10 * r.o.Debounce) // never starve under a steady stream
			}
			wait := min(r.o.Debounce, deadline.Sub(now))
			debounce = clock.After(max(wait, 0))
		case <-debounce:
			debounce, deadline = nil, time.Time{}
			r.pass(ctx, w)
			refresh = clock.After(r.o.RefreshInterval)
		case <-refresh:
			r.pass(ctx, w)
			refresh = clock.After(r.o.RefreshInterval)
		}
	}
}

// Pass runs one reconciliation now (allocation, then the zone when the
// writer is on). Tests and the admin API may call it; Run calls it itself.
func (r *Reconciler) Pass(ctx context.Context) error {
	w := r.writer
	if w != nil && w.Zone() == "" {
		if err := w.CheckZone(ctx); err != nil {
			r.setWriter(false, err.Error(), "")
			return err
		}
		r.setWriter(true, "", w.Zone())
	}
	return r.pass(ctx, w)
}

func (r *Reconciler) pass(ctx context.Context, w *Writer) error {
	err := r.passOnce(ctx, w)
	if err != nil && ctx.Err() == nil {
		r.o.Logger.Error("dns: reconciliation failed; retrying at the next refresh", "error", err)
	}
	return err
}

func (r *Reconciler) passOnce(ctx context.Context, w *Writer) error {
	svcs, err := Services(ctx, r.st)
	if err != nil {
		return r.finish(nil, nil, err)
	}
	gens, err := Generators(ctx, r.st)
	if err != nil {
		return r.finish(nil, nil, err)
	}
	want := make(map[vip.ServiceKey]bool, len(svcs))
	for _, s := range svcs {
		want[serviceKey(s)] = true
	}
	vips, allocErr := r.alloc.Sync(ctx, want)
	if vips == nil {
		return r.finish(nil, nil, allocErr)
	}
	zone := ""
	if w != nil {
		zone = w.Zone()
	}
	records, conflicts := DesiredRecords(r.o.Domain, r.o.HostedZoneID, zone, svcs, vips, gens)
	var werr error
	if w != nil {
		var res Result
		res, werr = w.Sync(ctx, records)
		conflicts = append(conflicts, res.Conflicts...)
		r.mu.Lock()
		r.status.OwnerConflicts, r.status.Footprint = res.OwnerConflicts, res.Footprint
		r.status.RecordsPerService, r.status.QuotaWarning = res.RecordsPerService, res.QuotaWarning
		r.mu.Unlock()
	}
	return r.finish(records, conflicts, errors.Join(allocErr, werr))
}

func (r *Reconciler) finish(records []Record, conflicts []Conflict, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if records != nil || err == nil {
		r.status.Records, r.status.Conflicts = records, conflicts
	}
	r.status.LastPass = r.o.Clock.Now()
	r.status.Passes++
	r.status.LastError = ""
	if err != nil {
		r.status.LastError = err.Error()
	}
	return err
}

func (r *Reconciler) setWriter(on bool, reason, zone string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Route53, r.status.Route53Error, r.status.Zone = on, reason, zone
}
