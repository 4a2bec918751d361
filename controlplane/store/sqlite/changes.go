package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// pollChanges publishes other instances' changes to this instance's
// watchers until ctx ends, and purges expired records and old changes.
func (s *Store) pollChanges(ctx context.Context, last int64) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := s.readChanges(ctx, last)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.log.Warn("sqlite: polling changes failed", "error", err)
			}
			continue
		}
		last = next
		s.maybePurge(ctx)
	}
}

// readChanges publishes the changes after id last and returns the last id
// read. Ids are dense (AUTOINCREMENT in a single-writer database), so a
// hole right after last means pruned rows: watchers are told to resync.
func (s *Store) readChanges(ctx context.Context, last int64) (int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, origin, kind, mesh, name, version, op
		FROM changes WHERE id > ? ORDER BY id LIMIT 10000`, last)
	if err != nil {
		return last, fmt.Errorf("reading changes after %d: %w", last, err)
	}
	defer rows.Close()
	first := true
	for rows.Next() {
		var id, version int64
		var origin string
		var op int
		var k store.Key
		if err := rows.Scan(&id, &origin, &k.Kind, &k.Mesh, &k.Name, &version, &op); err != nil {
			return last, fmt.Errorf("reading changes after %d: %w", last, err)
		}
		if first && id != last+1 {
			s.hub.Publish(store.Event{})
		}
		first = false
		last = id
		if origin != s.origin {
			s.hub.Publish(store.Event{Op: store.Op(op), Key: k, Version: version})
		}
	}
	if err := rows.Err(); err != nil {
		return last, fmt.Errorf("reading changes: %w", err)
	}
	return last, nil
}

// maybePurge deletes, at most once per purgeEvery, expired records and
// changes older than the retention.
func (s *Store) maybePurge(ctx context.Context) {
	now := s.now()
	s.purgeMu.Lock()
	due := now.Sub(s.lastPurge) >= purgeEvery
	if due {
		s.lastPurge = now
	}
	s.purgeMu.Unlock()
	if !due {
		return
	}
	if _, err := s.exec(ctx, `DELETE FROM records WHERE expires_at <> 0 AND expires_at <= ?`, now.UnixNano()); err != nil {
		s.cfg.log.Warn("sqlite: purging expired records failed", "error", err)
	}
	if _, err := s.exec(ctx, `DELETE FROM changes WHERE at < ?`, now.Add(-s.cfg.retention).UnixNano()); err != nil {
		s.cfg.log.Warn("sqlite: pruning changes failed", "error", err)
	}
}
