// Package election elects one leader among CP replicas with a
// store.Leaser: writers that must be unique (the Route53 writer and the VIP
// allocator) run only while their replica holds the lease. (CA rotation
// needs no lease: it runs on any replica with versioned store writes.)
//
// A candidate tries to take the lease every RetryPeriod (default TTL/3). The leader renews it
// every TTL/3; it steps down — cancelling the context its work runs under —
// when the lease is refused (someone else holds it) or when renewals keep
// failing until TTL has passed since the last successful one, measured
// from before that call was sent, so it stops no later than the store lets
// another replica take over. On shutdown it stops its work first, then
// releases the lease so a successor need not wait for the TTL.
package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Clock is the time source; tests inject their own. Nil means the real
// clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config describes one replica's candidacy.
type Config struct {
	// Leaser holds the lease, normally the CP's store.
	Leaser store.Leaser
	// Name is the lease's name, e.g. "route53-writer".
	Name string
	// Holder identifies this replica; it must differ between replicas.
	Holder string
	// TTL is how long a lease lasts without renewal. The leader renews it
	// every TTL/3.
	TTL time.Duration
	// RetryPeriod is how often a candidate tries to take the lease;
	// default TTL/3.
	RetryPeriod time.Duration
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Elector runs one replica's candidacy for one lease.
type Elector struct {
	cfg    Config
	period time.Duration
	leader atomic.Bool
}

// New checks cfg and returns an elector.
func New(cfg Config) (*Elector, error) {
	switch {
	case cfg.Leaser == nil:
		return nil, errors.New("election: creating elector: no leaser")
	case cfg.Name == "" || cfg.Holder == "":
		return nil, fmt.Errorf("election: creating elector: lease name %q and holder %q must not be empty", cfg.Name, cfg.Holder)
	case cfg.TTL <= 0:
		return nil, fmt.Errorf("election: creating elector for %s: TTL %v must be positive", cfg.Name, cfg.TTL)
	}
	if cfg.RetryPeriod <= 0 {
		cfg.RetryPeriod = cfg.TTL / 3
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("lease", cfg.Name, "holder", cfg.Holder)
	return &Elector{cfg: cfg, period: cfg.TTL / 3}, nil
}

// IsLeader reports whether this replica leads now.
func (e *Elector) IsLeader() bool { return e.leader.Load() }

// Run campaigns until ctx ends. Each time this replica becomes leader it
// calls onStart in a new goroutine with a context cancelled when
// leadership ends; when it ends, Run waits for onStart to return, then
// calls onStop (may be nil), then campaigns again. When ctx ends, Run
// stops the leader's work, releases the lease and returns nil.
func (e *Elector) Run(ctx context.Context, onStart func(ctx context.Context), onStop func()) error {
	if onStart == nil {
		return errors.New("election: running: onStart is nil")
	}
	// Released on every exit: a lease taken just as ctx ended is not left
	// to expire, and releasing a lease held by another replica does nothing.
	defer e.release()
	for {
		validUntil, ok := e.campaign(ctx)
		if !ok {
			return nil
		}
		e.lead(ctx, validUntil, onStart, onStop)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// campaign tries to take the lease every RetryPeriod until it does (reporting
// until when it is surely held) or ctx ends.
func (e *Elector) campaign(ctx context.Context) (time.Time, bool) {
	for {
		at := e.cfg.Clock.Now()
		ok, err := e.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			e.cfg.Logger.Warn("election: acquiring the lease failed", "error", err)
		}
		if ok && ctx.Err() == nil {
			e.cfg.Logger.Info("election: became leader")
			return at.Add(e.cfg.TTL), true
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-e.cfg.Clock.After(e.cfg.RetryPeriod):
		}
	}
}

// lead runs onStart while the lease is renewed, and stops it when the
// lease is lost or ctx ends.
func (e *Elector) lead(ctx context.Context, validUntil time.Time, onStart func(context.Context), onStop func()) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	e.leader.Store(true)
	go func() {
		defer close(done)
		onStart(lctx)
	}()
	e.renew(ctx, validUntil)
	e.leader.Store(false)
	cancel()
	<-done
	if onStop != nil {
		onStop()
	}
}

// renew keeps the lease until it is lost or ctx ends.
func (e *Elector) renew(ctx context.Context, validUntil time.Time) {
	for {
		wait := min(e.period, validUntil.Sub(e.cfg.Clock.Now()))
		if wait <= 0 {
			e.cfg.Logger.Warn("election: lost leadership: the lease could not be renewed in time")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-e.cfg.Clock.After(wait):
		}
		if !e.cfg.Clock.Now().Before(validUntil) {
			e.cfg.Logger.Warn("election: lost leadership: the lease could not be renewed in time")
			return
		}
		at := e.cfg.Clock.Now()
		ok, err := e.acquire(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			e.cfg.Logger.Warn("election: renewing the lease failed; retrying", "error", err, "valid_until", validUntil)
		case !ok:
			e.cfg.Logger.Warn("election: lost leadership: another replica holds the lease")
			return
		default:
			validUntil = at.Add(e.cfg.TTL)
		}
	}
}

// acquire takes or renews the lease, bounding the call by one period.
func (e *Elector) acquire(ctx context.Context) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, e.period)
	defer cancel()
	ok, err := e.cfg.Leaser.AcquireLease(cctx, e.cfg.Name, e.cfg.Holder, e.cfg.TTL)
	if err != nil {
		return false, fmt.Errorf("election: acquiring lease %s for %s: %w", e.cfg.Name, e.cfg.Holder, err)
	}
	return ok, nil
}

// release gives the lease up after the leader's work stopped.
func (e *Elector) release() {
	ctx, cancel := context.WithTimeout(context.Background(), max(e.cfg.TTL, time.Second))
	defer cancel()
	if err := e.cfg.Leaser.ReleaseLease(ctx, e.cfg.Name, e.cfg.Holder); err != nil {
		e.cfg.Logger.Warn("election: releasing the lease failed; it expires after its TTL", "error", err)
		return
	}
	e.cfg.Logger.Info("election: released the lease")
}
