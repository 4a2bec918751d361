// Package postgres is the store.Backend for several CP replicas sharing one
// PostgreSQL database (RDS, Aurora), on pgx/v5.
//
// Records live in one table with versions for optimistic concurrency; a
// Batch is one transaction whose rows are locked (SELECT ... FOR UPDATE) as
// it goes. Each write is announced with pg_notify inside the same
// transaction, so replicas hear about it only once it committed; a
// dedicated LISTEN connection per Store receives them, reconnects with
// backoff when it breaks and then sends watchers a resync marker (an Event
// with Op 0), since notifications sent meanwhile are lost. The schema is
// migrated on Open under an advisory lock. Leases run on the database's
// clock (now()). Reads are retried with backoff on transient connection
// errors.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/internal/writeplan"
	"github.com/ecsmesh/ecsmesh/controlplane/store/watch"
)

// ChannelPrefix is the notification channel; a Store in schema S uses
// ChannelPrefix + "_" + S so that stores in different schemas of one
// database don't hear each other.
const ChannelPrefix = "ecsmesh_changes"

// Option configures Open.
type Option func(*config)

type config struct {
	schema   string
	now      func() time.Time
	log      *slog.Logger
	retries  int
	backoff  time.Duration
	maxConns int32
}

// WithSchema keeps every table in schema (created if missing) by setting
// the connections' search_path; the notification channel includes it.
func WithSchema(schema string) Option { return func(c *config) { c.schema = schema } }

// WithClock sets the clock of record times and record expiry. Leases use
// the database's clock whatever this is.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger sets the logger of background work (the LISTEN connection).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithRetries sets how many times a read (and a write that certainly did
// not reach the server) is retried on a transient error, starting after
// backoff and doubling.
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *config) { c.retries, c.backoff = n, backoff }
}

// WithMaxConns caps the connection pool (the LISTEN connection is extra).
func WithMaxConns(n int32) Option { return func(c *config) { c.maxConns = n } }

// Store is a store.Backend on PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	cfg     config
	channel string
	origin  string // tags this instance's notifications
	hub     *watch.Hub

	closed    atomic.Bool
	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once

	purgeMu   sync.Mutex
	lastPurge time.Time
}

var _ store.Backend = (*Store)(nil)

// Open connects to dsn (a PostgreSQL URL or key=value string), migrates the
// schema and starts listening for other replicas' changes before
// returning.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg := config{now: time.Now, log: slog.New(slog.DiscardHandler), retries: 4, backoff: 50 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing the DSN: %w", err)
	}
	if cfg.schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.schema}.Sanitize()
	}
	if cfg.maxConns > 0 {
		pcfg.MaxConns = cfg.maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	if err := migrate(ctx, pool, cfg.schema); err != nil {
		pool.Close()
		return nil, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	channel := ChannelPrefix
	if cfg.schema != "" {
		channel += "_" + cfg.schema
	}
	s := &Store{pool: pool, cfg: cfg, channel: channel, origin: hex.EncodeToString(b), hub: watch.NewHub(),
		done: make(chan struct{}), lastPurge: cfg.now()}
	conn, err := s.listen(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.listenLoop(lctx, conn)
	return s, nil
}

func (s *Store) now() time.Time { return s.cfg.now().UTC() }

// Close stops listening, closes watchers' channels and the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stop()
		<-s.done
		s.hub.Close()
		s.pool.Close()
	})
	return nil
}

func errClosed(doing string) error { return fmt.Errorf("postgres: %s: %w", doing, store.ErrClosed) }

const recordColumns = `kind, mesh, name, version, spec, created_at, modified_at, expires_at`

func scanRecord(row pgx.Row) (store.Record, error) {
	var r store.Record
	var created, modified, expires int64
	if err := row.Scan(&r.Kind, &r.Mesh, &r.Name, &r.Version, &r.Spec, &created, &modified, &expires); err != nil {
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
	doing := "getting " + key.String()
	if s.closed.Load() {
		return store.Record{}, errClosed(doing)
	}
	var r store.Record
	err := s.retry(ctx, doing, func() error {
		var err error
		r, err = scanRecord(s.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM records
			WHERE kind = $1 AND mesh = $2 AND name = $3 AND (expires_at = 0 OR expires_at > $4)`,
			key.Kind, key.Mesh, key.Name, s.now().UnixNano()))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Record{}, fmt.Errorf("postgres: %s: %w", doing, store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, s.wrap(doing, err)
	}
	return r, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, kind string, opts store.ListOptions) ([]store.Record, error) {
	doing := "listing " + kind
	if s.closed.Load() {
		return nil, errClosed(doing)
	}
	var out []store.Record
	err := s.retry(ctx, doing, func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+` FROM records
			WHERE kind = $1 AND ($2 = '' OR mesh = $2) AND (expires_at = 0 OR expires_at > $3)
			ORDER BY mesh, name`, kind, opts.Mesh, s.now().UnixNano())
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Record, error) { return scanRecord(row) })
		return err
	})
	if err != nil {
		return nil, s.wrap(doing, err)
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

// AcquireLease implements store.Leaser with one atomic upsert on the
// database's clock: the row is taken over only when holder already has it
// or it has expired.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	doing := fmt.Sprintf("acquiring lease %s for %s", name, holder)
	if s.closed.Load() {
		return false, errClosed(doing)
	}
	var n int64
	err := s.retry(ctx, doing, func() error {
		tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, holder, expires_at)
			VALUES ($1, $2, now() + $3 * interval '1 microsecond')
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= now()`,
			name, holder, ttl.Microseconds())
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return false, s.wrap(doing, err)
	}
	return n == 1, nil
}

// ReleaseLease implements store.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	doing := fmt.Sprintf("releasing lease %s for %s", name, holder)
	if s.closed.Load() {
		return errClosed(doing)
	}
	err := s.retry(ctx, doing, func() error {
		_, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
		return err
	})
	if err != nil {
		return s.wrap(doing, err)
	}
	return nil
}

// wrap adds context to err, reporting store.ErrClosed after Close.
func (s *Store) wrap(doing string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: %s: %w: %w", doing, store.ErrClosed, err)
	}
	return fmt.Errorf("postgres: %s: %w", doing, err)
}
