package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/internal/writeplan"
)

// purgeEvery bounds how often a Batch also deletes expired records.
const purgeEvery = time.Minute

// maxPayload keeps NOTIFY payloads under PostgreSQL's 8000-byte cap; a
// longer one is replaced by a resync request.
const maxPayload = 7000

// notice is the NOTIFY payload: one change, or Resync for "List again".
type notice struct {
	Origin  string `json:"o"`
	Kind    string `json:"k,omitempty"`
	Mesh    string `json:"m,omitempty"`
	Name    string `json:"n,omitempty"`
	Version int64  `json:"v,omitempty"`
	Op      int    `json:"op,omitempty"`
	Resync  bool   `json:"r,omitempty"`
}

// Batch implements store.Store in one transaction. Writes that fail with
// a serialization failure or deadlock are retried as a whole.
func (s *Store) Batch(ctx context.Context, writes []store.Write) ([]store.Record, error) {
	if s.closed.Load() {
		return nil, errClosed("applying batch")
	}
	var out []store.Record
	var events []store.Event
	err := s.retryIf(ctx, "applying batch", writeRetryable, func() error {
		var err error
		out, events, err = s.batchOnce(ctx, writes)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		return nil, s.wrap("applying batch", err)
	}
	for _, e := range events {
		s.hub.Publish(e)
	}
	return out, nil
}

func (s *Store) batchOnce(ctx context.Context, writes []store.Write) (_ []store.Record, _ []store.Event, err error) {
	now := s.now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("beginning: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	s.maybePurge(ctx, tx, now)
	out := make([]store.Record, len(writes))
	events := make([]store.Event, 0, len(writes))
	for i, w := range writes {
		p, err := s.apply(ctx, tx, w, now)
		if err != nil {
			return nil, nil, err
		}
		out[i] = p.Record
		events = append(events, p.Event)
		if err := s.notify(ctx, tx, p.Event); err != nil {
			return nil, nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("committing: %w", err)
	}
	return out, events, nil
}

// apply runs one write inside tx, locking the row it reads.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, w store.Write, now time.Time) (writeplan.Plan, error) {
	k := w.Record.Key
	for {
		cur, err := scanRecord(tx.QueryRow(ctx, `SELECT `+recordColumns+` FROM records
			WHERE kind = $1 AND mesh = $2 AND name = $3 FOR UPDATE`, k.Kind, k.Mesh, k.Name))
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return writeplan.Plan{}, fmt.Errorf("reading %s: %w", k, err)
		}
		p, err := writeplan.Make(w, writeplan.Row{Found: err == nil, Record: cur}, now)
		if err != nil {
			return writeplan.Plan{}, fmt.Errorf("postgres: %w", err)
		}
		r := p.Record
		var n int64
		switch p.Action {
		case writeplan.Insert:
			// Another transaction may insert the key after our SELECT found
			// nothing: DO NOTHING then affects no row.
			tag, err := tx.Exec(ctx, `INSERT INTO records (`+recordColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (kind, mesh, name) DO NOTHING`,
				k.Kind, k.Mesh, k.Name, r.Version, spec(r.Spec), writeplan.Nanos(r.CreatedAt), writeplan.Nanos(r.ModifiedAt), writeplan.Nanos(r.ExpiresAt))
			if err != nil {
				return writeplan.Plan{}, fmt.Errorf("inserting %s: %w", k, err)
			}
			if n = tag.RowsAffected(); n == 0 {
				if w.Mode == store.Upsert {
					continue // the row exists now: read it again, locked, and overwrite it
				}
				return writeplan.Plan{}, fmt.Errorf("postgres: creating %s: %w", k, store.ErrAlreadyExists)
			}
		case writeplan.Replace:
			tag, err := tx.Exec(ctx, `UPDATE records SET version = $1, spec = $2, created_at = $3, modified_at = $4, expires_at = $5
				WHERE kind = $6 AND mesh = $7 AND name = $8 AND version = $9`,
				r.Version, spec(r.Spec), writeplan.Nanos(r.CreatedAt), writeplan.Nanos(r.ModifiedAt), writeplan.Nanos(r.ExpiresAt),
				k.Kind, k.Mesh, k.Name, p.Prev)
			if err != nil {
				return writeplan.Plan{}, fmt.Errorf("updating %s: %w", k, err)
			}
			n = tag.RowsAffected()
		case writeplan.Remove:
			tag, err := tx.Exec(ctx, `DELETE FROM records WHERE kind = $1 AND mesh = $2 AND name = $3 AND version = $4`,
				k.Kind, k.Mesh, k.Name, p.Prev)
			if err != nil {
				return writeplan.Plan{}, fmt.Errorf("deleting %s: %w", k, err)
			}
			n = tag.RowsAffected()
		}
		if n != 1 {
			return writeplan.Plan{}, fmt.Errorf("postgres: writing %s at version %d: %w", k, p.Prev, store.ErrConflict)
		}
		return p, nil
	}
}

// notify queues the change's notification; PostgreSQL delivers it only if
// the transaction commits.
func (s *Store) notify(ctx context.Context, tx pgx.Tx, e store.Event) error {
	payload, err := json.Marshal(notice{Origin: s.origin, Kind: e.Key.Kind, Mesh: e.Key.Mesh, Name: e.Key.Name, Version: e.Version, Op: int(e.Op)})
	if err != nil {
		return fmt.Errorf("encoding the notification of %s: %w", e.Key, err)
	}
	if len(payload) > maxPayload {
		payload, _ = json.Marshal(notice{Origin: s.origin, Resync: true})
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, string(payload)); err != nil {
		return fmt.Errorf("notifying the change of %s: %w", e.Key, err)
	}
	return nil
}

// maybePurge deletes expired records at most once per purgeEvery; a
// failure only delays the purge.
func (s *Store) maybePurge(ctx context.Context, tx pgx.Tx, now time.Time) {
	s.purgeMu.Lock()
	due := now.Sub(s.lastPurge) >= purgeEvery
	if due {
		s.lastPurge = now
	}
	s.purgeMu.Unlock()
	if !due {
		return
	}
	// A savepoint keeps a failed purge from aborting the batch.
	if _, err := tx.Exec(ctx, `SAVEPOINT purge`); err != nil {
		return
	}
	if _, err := tx.Exec(ctx, `DELETE FROM records WHERE expires_at <> 0 AND expires_at <= $1`, now.UnixNano()); err != nil {
		s.cfg.log.Warn("postgres: purging expired records failed", "error", err)
		_, _ = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT purge`)
		return
	}
	_, _ = tx.Exec(ctx, `RELEASE SAVEPOINT purge`)
}

// spec never stores NULL: an empty document is an empty bytea.
func spec(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
