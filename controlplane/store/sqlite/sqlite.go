// Package sqlite is the default store.Backend: one SQLite file, pure Go
// (modernc.org/sqlite, no cgo).
//
// The file is opened in WAL mode with a busy timeout, and every transaction
// begins IMMEDIATE, so concurrent writers (goroutines or processes) wait for
// each other instead of failing. The schema is migrated on Open from
// embedded, ordered SQL files recorded in schema_migrations. The file and
// its -wal and -shm companions are the owner's only (FileMode, 0600): they
// hold every private key of the mesh.
//
// Watchers of a Store hear its own commits at once (in-process hub). Other
// Store instances on the same file — another process, or a second Open in
// this one — hear them by polling the changes table every PollInterval
// (250 ms by default): each Batch appends one row per write, tagged with the
// instance that made it, and rows older than ChangeRetention are pruned. An
// instance that missed rows (it stalled past the retention) gets a resync
// marker (an Event with Op 0).
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/internal/writeplan"
	"github.com/ecsmesh/ecsmesh/controlplane/store/watch"
)

// Defaults of the options.
const (
	DefaultPollInterval    = 250 * time.Millisecond
	DefaultChangeRetention = 5 * time.Minute
	DefaultBusyTimeout     = 10 * time.Second
	// purgeEvery bounds how often expired rows and old changes are deleted.
	purgeEvery = 30 * time.Second
)

// Option configures Open.
type Option func(*config)

type config struct {
	now          func() time.Time
	log          *slog.Logger
	poll         time.Duration
	retention    time.Duration
	busyTimeout  time.Duration
	maxOpenConns int
}

// WithClock sets the clock used for record times, expiry and leases.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger sets the logger of background work (change polling, purging).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithPollInterval sets how often other instances' changes are polled.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithChangeRetention sets how long change rows are kept for other
// instances to read.
func WithChangeRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// WithBusyTimeout sets how long a writer waits for another one's lock.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// Store is a store.Backend on one SQLite file.
type Store struct {
	db     *sql.DB
	cfg    config
	origin string // tags this instance's rows in changes
	hub    *watch.Hub

	closed    atomic.Bool
	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once

	purgeMu   sync.Mutex
	lastPurge time.Time
}

var _ store.Backend = (*Store)(nil)

// Open opens (creating it if needed) the SQLite database at path, migrates
// its schema and starts polling for other instances' changes. path must be
// a file: ":memory:" would give every connection its own database.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{now: time.Now, log: slog.New(slog.DiscardHandler), poll: DefaultPollInterval,
		retention: DefaultChangeRetention, busyTimeout: DefaultBusyTimeout, maxOpenConns: 8}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: opening %q: a file path is required", path)
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Opaque: url.PathEscape(path), RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(cfg.maxOpenConns)
	db.SetMaxIdleConns(cfg.maxOpenConns)
	if err := migrateRetrying(ctx, db, func() int64 { return cfg.now().UnixNano() }, cfg.busyTimeout); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: migrating %s: %w", path, err)
	}
	var last int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM changes`).Scan(&last); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: reading change log of %s: %w", path, err)
	}
	origin, err := newOrigin()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	pollCtx, stop := context.WithCancel(context.Background())
	s := &Store{db: db, cfg: cfg, origin: origin, hub: watch.NewHub(), stop: stop,
		done: make(chan struct{}), lastPurge: cfg.now()}
	go s.pollChanges(pollCtx, last)
	return s, nil
}

// FileMode is the mode of the database file and its -wal and -shm files:
// they hold every private key of the mesh.
const FileMode = 0o600

// ownerOnly creates the database file with FileMode if it is missing (SQLite
// gives its -wal and -shm files the database file's mode) and tightens an
// existing file and companions to FileMode.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("sqlite: creating %s: %w", path, err)
	}
	_ = f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if fi.Mode().Perm()&^FileMode != 0 {
			if err := os.Chmod(p, FileMode); err != nil {
				return fmt.Errorf("sqlite: %s has mode %04o and cannot be made %04o (it holds the mesh's private keys): %w", p, fi.Mode().Perm(), FileMode, err)
			}
		}
	}
	return nil
}

func newOrigin() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("sqlite: generating instance id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// now returns the store's clock in UTC without a monotonic reading.
func (s *Store) now() time.Time { return s.cfg.now().UTC() }

// Close stops polling, closes watchers' channels and the database.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stop()
		<-s.done
		s.hub.Close()
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("sqlite: closing: %w", cerr)
		}
	})
	return err
}

const recordColumns = `kind, mesh, name, version, spec, created_at, modified_at, expires_at`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(sc scanner) (store.Record, error) {
	var r store.Record
	var created, modified, expires int64
	if err := sc.Scan(&r.Kind, &r.Mesh, &r.Name, &r.Version, &r.Spec, &created, &modified, &expires); err != nil {
		return store.Record{}, err
	}
	if r.Spec == nil {
		r.Spec = []byte{}
	}
	r.CreatedAt, r.ModifiedAt, r.ExpiresAt = writeplan.Time(created), writeplan.Time(modified), writeplan.Time(expires)
	return r, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key store.Key) (store.Record, error) {
	if s.closed.Load() {
		return store.Record{}, errClosed("getting " + key.String())
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE kind = ? AND mesh = ? AND name = ? AND (expires_at = 0 OR expires_at > ?)`,
		key.Kind, key.Mesh, key.Name, s.now().UnixNano())
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Record{}, fmt.Errorf("sqlite: getting %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("sqlite: getting %s: %w", key, s.mapErr(err))
	}
	return r, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, kind string, opts store.ListOptions) ([]store.Record, error) {
	if s.closed.Load() {
		return nil, errClosed("listing " + kind)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE kind = ? AND (? = '' OR mesh = ?) AND (expires_at = 0 OR expires_at > ?)
		ORDER BY mesh, name`, kind, opts.Mesh, opts.Mesh, s.now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing %s: %w", kind, s.mapErr(err))
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listing %s: %w", kind, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing %s: %w", kind, s.mapErr(err))
	}
	return out, nil
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context) (<-chan store.Event, error) {
	if s.closed.Load() {
		return nil, errClosed("watching")
	}
	return s.hub.Subscribe(ctx), nil
}

// mapErr turns errors caused by Close into store.ErrClosed.
func (s *Store) mapErr(err error) error {
	if s.closed.Load() {
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	}
	return err
}

func errClosed(doing string) error { return fmt.Errorf("sqlite: %s: %w", doing, store.ErrClosed) }
