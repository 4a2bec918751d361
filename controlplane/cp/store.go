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
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	switch cfg.Store.Type {
	case config.StoreMemory:
		log.Warn("using the memory store: nothing survives a restart (KUMA_STORE_TYPE=memory is for tests)")
		return memory.New(nil), nil
	case config.StoreSQLite:
		path := filepath.Join(cfg.DataDir, SQLiteFile)
		s, err := sqlite.Open(ctx, path, sqlite.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
		}
		log.Info("store ready", "type", "sqlite", "path", path)
		return s, nil
	case config.StorePostgres:
		if mode := cfg.Store.Postgres.TLSMode; mode != "verifyFull" {
			log.Warn("PostgreSQL's server is not fully verified: the store holds every CA and signing key of the mesh; set KUMA_STORE_POSTGRES_TLS_MODE=verifyFull (with KUMA_STORE_POSTGRES_TLS_CA_PATH, e.g. the RDS CA bundle)", "KUMA_STORE_POSTGRES_TLS_MODE", mode)
		}
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
			log.Warn("PostgreSQL not reachable yet; retrying", "error", err, "in", delay)
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

// prepareDataDir creates the data directory (0700) and refuses one that
// others may write: they could replace the SQLite store (every private
// key) or the CA file local agents trust.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating ECSMESH_DATA_DIR %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("ECSMESH_DATA_DIR %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("ECSMESH_DATA_DIR %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("ECSMESH_DATA_DIR %s has mode %04o: group or others may write it, and so replace the store (every private key of the mesh) or the CA file agents trust; run `chmod go-w %s` (or chmod 700), or choose another directory", dir, perm, dir)
	}
	return nil
}
