package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/internal/writeplan"
)

// Batch implements store.Store: every write runs in one immediate
// transaction; the first failing write rolls all of them back. Watchers of
// this instance are told after the commit; other instances read the
// changes rows written in the same transaction.
func (s *Store) Batch(ctx context.Context, writes []store.Write) (_ []store.Record, err error) {
	if s.closed.Load() {
		return nil, errClosed("applying batch")
	}
	now := s.now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: beginning batch: %w", s.mapErr(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	out := make([]store.Record, len(writes))
	events := make([]store.Event, 0, len(writes))
	for i, w := range writes {
		p, err := s.apply(ctx, tx, w, now)
		if err != nil {
			return nil, err
		}
		out[i] = p.Record
		events = append(events, p.Event)
		e := p.Event
		if _, err := tx.ExecContext(ctx, `INSERT INTO changes (origin, kind, mesh, name, version, op, at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, s.origin, e.Key.Kind, e.Key.Mesh, e.Key.Name, e.Version, int(e.Op), now.UnixNano()); err != nil {
			return nil, fmt.Errorf("sqlite: logging change of %s: %w", e.Key, s.mapErr(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: committing batch: %w", s.mapErr(err))
	}
	for _, e := range events {
		s.hub.Publish(e)
	}
	return out, nil
}

// apply runs one write inside tx.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, w store.Write, now time.Time) (writeplan.Plan, error) {
	k := w.Record.Key
	cur, err := scanRecord(tx.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE kind = ? AND mesh = ? AND name = ?`, k.Kind, k.Mesh, k.Name))
	row := writeplan.Row{Found: err == nil, Record: cur}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return writeplan.Plan{}, fmt.Errorf("sqlite: reading %s: %w", k, s.mapErr(err))
	}
	p, err := writeplan.Make(w, row, now)
	if err != nil {
		return writeplan.Plan{}, fmt.Errorf("sqlite: %w", err)
	}
	r := p.Record
	var res sql.Result
	switch p.Action {
	case writeplan.Insert:
		res, err = tx.ExecContext(ctx, `INSERT INTO records (`+recordColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			k.Kind, k.Mesh, k.Name, r.Version, spec(r.Spec), writeplan.Nanos(r.CreatedAt), writeplan.Nanos(r.ModifiedAt), writeplan.Nanos(r.ExpiresAt))
	case writeplan.Replace:
		res, err = tx.ExecContext(ctx, `UPDATE records SET version = ?, spec = ?, created_at = ?, modified_at = ?, expires_at = ?
			WHERE kind = ? AND mesh = ? AND name = ? AND version = ?`,
			r.Version, spec(r.Spec), writeplan.Nanos(r.CreatedAt), writeplan.Nanos(r.ModifiedAt), writeplan.Nanos(r.ExpiresAt),
			k.Kind, k.Mesh, k.Name, p.Prev)
	case writeplan.Remove:
		res, err = tx.ExecContext(ctx, `DELETE FROM records WHERE kind = ? AND mesh = ? AND name = ? AND version = ?`,
			k.Kind, k.Mesh, k.Name, p.Prev)
	}
	if err != nil {
		return writeplan.Plan{}, fmt.Errorf("sqlite: writing %s: %w", k, s.mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return writeplan.Plan{}, fmt.Errorf("sqlite: writing %s at version %d: %w", k, p.Prev, store.ErrConflict)
	}
	return p, nil
}

// spec never stores NULL: an empty document is an empty blob.
func spec(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
