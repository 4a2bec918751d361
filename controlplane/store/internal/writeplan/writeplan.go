// Package writeplan decides what one store.Write does to the row stored
// under its key. The SQL stores share it so that their versioning, expiry
// and error semantics match the memory store exactly.
package writeplan

import (
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Row is what a SQL store found under a key inside its transaction.
type Row struct {
	// Found says a row exists, live or expired.
	Found bool
	// Record is the stored row when Found.
	Record store.Record
}

// Live reports whether the row exists and has not expired at now.
func (r Row) Live(now time.Time) bool {
	return r.Found && (r.Record.ExpiresAt.IsZero() || now.Before(r.Record.ExpiresAt))
}

// Action is the SQL statement a write needs.
type Action int

// Actions a Plan asks for.
const (
	// Insert a new row (none stored).
	Insert Action = iota + 1
	// Replace the stored row, guarded by its version (WHERE version = Prev).
	Replace
	// Remove the stored row, guarded by its version.
	Remove
)

// Plan is the outcome of a write: the statement to run, the record to
// store (or, for Remove, the record as it was), the event to announce and
// the version the statement must find (Prev).
type Plan struct {
	Action Action
	Record store.Record
	Prev   int64
	Event  store.Event
}

// Make checks w against cur at now and returns the plan, or an error
// wrapping store.ErrAlreadyExists, ErrNotFound or ErrConflict.
func Make(w store.Write, cur Row, now time.Time) (Plan, error) {
	k := w.Record.Key
	live := cur.Live(now)
	switch w.Mode {
	case store.Create, store.Update, store.Upsert:
		if w.Mode == store.Create && live {
			return Plan{}, fmt.Errorf("creating %s: %w", k, store.ErrAlreadyExists)
		}
		if w.Mode == store.Update {
			if !live {
				return Plan{}, fmt.Errorf("updating %s: %w", k, store.ErrNotFound)
			}
			if cur.Record.Version != w.Record.Version {
				return Plan{}, fmt.Errorf("updating %s at version %d (stored %d): %w", k, w.Record.Version, cur.Record.Version, store.ErrConflict)
			}
		}
		nr := w.Record
		nr.Spec = append([]byte{}, w.Record.Spec...)
		nr.ModifiedAt = now
		nr.ExpiresAt = w.Record.ExpiresAt.UTC()
		p := Plan{Action: Insert, Record: nr}
		switch {
		case live:
			p.Action, p.Prev = Replace, cur.Record.Version
			p.Record.Version = cur.Record.Version + 1
			p.Record.CreatedAt = cur.Record.CreatedAt
			p.Event = store.Event{Op: store.Updated, Key: k, Version: p.Record.Version}
			return p, nil
		case cur.Found: // expired row replaced: keep versions increasing
			p.Action, p.Prev = Replace, cur.Record.Version
			p.Record.Version = cur.Record.Version + 1
		default:
			p.Record.Version = 1
		}
		p.Record.CreatedAt = now
		p.Event = store.Event{Op: store.Created, Key: k, Version: p.Record.Version}
		return p, nil
	case store.Delete:
		if !live {
			return Plan{}, fmt.Errorf("deleting %s: %w", k, store.ErrNotFound)
		}
		if w.Record.Version != 0 && w.Record.Version != cur.Record.Version {
			return Plan{}, fmt.Errorf("deleting %s at version %d (stored %d): %w", k, w.Record.Version, cur.Record.Version, store.ErrConflict)
		}
		return Plan{Action: Remove, Record: cur.Record, Prev: cur.Record.Version,
			Event: store.Event{Op: store.Deleted, Key: k, Version: cur.Record.Version}}, nil
	}
	return Plan{}, fmt.Errorf("store: applying write to %s: unknown mode %v", k, w.Mode)
}

// Nanos encodes t as Unix nanoseconds, 0 for the zero time.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Time decodes Nanos: 0 is the zero time, anything else a UTC time.
func Time(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
