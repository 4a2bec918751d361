package sqlite

import (
	"context"
	"fmt"
	"time"
)

// AcquireLease implements store.Leaser with one atomic upsert: the row is
// taken over only when holder already has it or it has expired.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if s.closed.Load() {
		return false, errClosed("acquiring lease " + name)
	}
	now := s.now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("sqlite: acquiring lease %s for %s: %w", name, holder, s.mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: acquiring lease %s for %s: %w", name, holder, err)
	}
	return n == 1, nil
}

// ReleaseLease implements store.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if s.closed.Load() {
		return errClosed("releasing lease " + name)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("sqlite: releasing lease %s for %s: %w", name, holder, s.mapErr(err))
	}
	return nil
}
