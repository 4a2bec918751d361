// Package memory is the in-process store.Backend for tests and single-process
// development (KUMA_STORE_TYPE=memory). It keeps nothing across restarts.
package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/watch"
)

// Store is a store.Backend held in memory.
type Store struct {
	now func() time.Time

	mu      sync.Mutex
	closed  bool
	records map[store.Key]store.Record
	leases  map[string]lease
	hub     *watch.Hub
}

type lease struct {
	holder  string
	expires time.Time
}

var _ store.Backend = (*Store)(nil)

// New returns an empty store. now may be nil (time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, records: map[store.Key]store.Record{}, leases: map[string]lease{}, hub: watch.NewHub()}
}

func (s *Store) live(r store.Record, now time.Time) bool {
	return r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt)
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, key store.Key) (store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Record{}, store.ErrClosed
	}
	r, ok := s.records[key]
	if !ok || !s.live(r, s.now()) {
		return store.Record{}, fmt.Errorf("getting %s: %w", key, store.ErrNotFound)
	}
	return clone(r), nil
}

// List implements store.Store.
func (s *Store) List(_ context.Context, kind string, opts store.ListOptions) ([]store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	now := s.now()
	var out []store.Record
	for k, r := range s.records {
		if k.Kind != kind || (opts.Mesh != "" && k.Mesh != opts.Mesh) || !s.live(r, now) {
			continue
		}
		out = append(out, clone(r))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Mesh != out[j].Mesh {
			return out[i].Mesh < out[j].Mesh
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Batch implements store.Store: all writes are checked against a copy of
// the affected records before any is applied.
func (s *Store) Batch(_ context.Context, writes []store.Write) ([]store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	now := s.now().UTC()
	staged := map[store.Key]*store.Record{} // nil value: deleted in this batch
	lookup := func(k store.Key) (store.Record, bool) {
		if r, ok := staged[k]; ok {
			if r == nil {
				return store.Record{}, false
			}
			return *r, true
		}
		r, ok := s.records[k]
		if ok && !s.live(r, now) {
			return store.Record{}, false
		}
		return r, ok
	}
	out := make([]store.Record, len(writes))
	var events []store.Event
	for i, w := range writes {
		k := w.Record.Key
		cur, exists := lookup(k)
		switch w.Mode {
		case store.Create, store.Update, store.Upsert:
			if w.Mode == store.Create && exists {
				return nil, fmt.Errorf("creating %s: %w", k, store.ErrAlreadyExists)
			}
			if w.Mode == store.Update {
				if !exists {
					return nil, fmt.Errorf("updating %s: %w", k, store.ErrNotFound)
				}
				if cur.Version != w.Record.Version {
					return nil, fmt.Errorf("updating %s at version %d (stored %d): %w", k, w.Record.Version, cur.Version, store.ErrConflict)
				}
			}
			nr := clone(w.Record)
			nr.ModifiedAt = now
			op := store.Created
			if exists {
				nr.Version = cur.Version + 1
				nr.CreatedAt = cur.CreatedAt
				op = store.Updated
			} else {
				nr.Version = 1
				if prev, ok := s.records[k]; ok { // expired record replaced: keep versions increasing
					nr.Version = prev.Version + 1
				}
				nr.CreatedAt = now
			}
			staged[k] = &nr
			out[i] = clone(nr)
			events = append(events, store.Event{Op: op, Key: k, Version: nr.Version})
		case store.Delete:
			if !exists {
				return nil, fmt.Errorf("deleting %s: %w", k, store.ErrNotFound)
			}
			if w.Record.Version != 0 && w.Record.Version != cur.Version {
				return nil, fmt.Errorf("deleting %s at version %d (stored %d): %w", k, w.Record.Version, cur.Version, store.ErrConflict)
			}
			staged[k] = nil
			out[i] = clone(cur)
			events = append(events, store.Event{Op: store.Deleted, Key: k, Version: cur.Version})
		default:
			return nil, fmt.Errorf("store: write %d: unknown mode %v", i, w.Mode)
		}
	}
	for k, r := range staged {
		if r == nil {
			delete(s.records, k)
		} else {
			s.records[k] = *r
		}
	}
	for _, e := range events {
		s.hub.Publish(e)
	}
	return out, nil
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context) (<-chan store.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	return s.hub.Subscribe(ctx), nil
}

// AcquireLease implements store.Leaser.
func (s *Store) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, store.ErrClosed
	}
	now := s.now()
	l, ok := s.leases[name]
	if ok && l.holder != holder && now.Before(l.expires) {
		return false, nil
	}
	s.leases[name] = lease{holder: holder, expires: now.Add(ttl)}
	return true, nil
}

// ReleaseLease implements store.Leaser.
func (s *Store) ReleaseLease(_ context.Context, name, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if l, ok := s.leases[name]; ok && l.holder == holder {
		delete(s.leases, name)
	}
	return nil
}

// Close implements store.Store; watchers' channels are closed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.hub.Close()
	}
	return nil
}

func clone(r store.Record) store.Record {
	r.Spec = append([]byte(nil), r.Spec...)
	return r
}
