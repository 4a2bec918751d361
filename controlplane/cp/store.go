package cp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
	"github.com/ecsmesh/ecsmesh/controlplane/store/sqlite"
)

// SQLiteFile is the store's file name under ECSMESH_DATA_DIR.
const SQLiteFile = "ecsmesh.db"

// OpenStore opens the configured store, retrying PostgreSQL with backoff
// for up to a minute while the database comes up.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Backend, error) {
	switch cfg.Store.Type {
	case config.StoreMemory:
		log.Warn("using the memory store: nothing survives a restart (KUMA_STORE_TYPE=memory is for tests)")
		return memory.New(nil), nil
	case config.StoreSQLite:
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating ECSMESH_DATA_DIR %s: %w", cfg.DataDir, err)
		}
		path := filepath.Join(cfg.DataDir, SQLiteFile)
		s, err := sqlite.Open(ctx, path, sqlite.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
		}
		log.Info("store ready", "type", "sqlite", "path", path)
		return s, nil
	case config.StorePostgres:
		var lastErr error
		delay := 500 * time.Millisecond
		deadline := time.Now().Add(time.Minute)
		for {
			opts := []postgres.Option{postgres.WithLogger(log)}
			if cfg.Store.Postgres.Schema != "" {
				opts = append(opts, postgres.WithSchema(cfg.Store.Postgres.Schema))
			}
			s, err := postgres.Open(ctx, cfg.PostgresDSN(), opts...)
			if err == nil {
				log.Info("store ready", "type", "postgres", "host", cfg.Store.Postgres.Host, "db", cfg.Store.Postgres.DBName)
				return s, nil
			}
			lastErr = err
			if time.Now().After(deadline) {
				break
			}
			log.Warn("PostgreSQL not reachable yet; retrying", "err", err, "in", delay)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(delay):
			}
			delay = min(delay*2, 8*time.Second)
		}
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s:%d (KUMA_STORE_POSTGRES_*): %w", cfg.Store.Postgres.Host, cfg.Store.Postgres.Port, lastErr)
	}
	return nil, fmt.Errorf("unknown KUMA_STORE_TYPE %q", cfg.Store.Type)
}
