package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AcquireLease implements store.Leaser with one atomic upsert: the row is
// taken over only when holder already has it or it has expired. Like every
// write it runs in an immediate transaction, so it waits for other writers.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	doing := fmt.Sprintf("acquiring lease %s for %s", name, holder)
	if s.closed.Load() {
		return false, errClosed(doing)
	}
	now := s.now()
	n, err := s.exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("sqlite: %s: %w", doing, s.mapErr(err))
	}
	return n == 1, nil
}

// ReleaseLease implements store.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	doing := fmt.Sprintf("releasing lease %s for %s", name, holder)
	if s.closed.Load() {
		return errClosed(doing)
	}
	if _, err := s.exec(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("sqlite: %s: %w", doing, s.mapErr(err))
	}
	return nil
}

// exec runs one write statement in an immediate transaction and returns
// the rows it affected.
func (s *Store) exec(ctx context.Context, query string, args ...any) (n int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var res sql.Result
	if res, err = tx.ExecContext(ctx, query, args...); err != nil {
		return 0, err
	}
	if n, err = res.RowsAffected(); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
