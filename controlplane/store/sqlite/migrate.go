package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store/internal/migration"

	sqlitedriver "modernc.org/sqlite"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// loadMigrations returns the embedded migrations ordered by version.
func loadMigrations(files fs.FS) ([]migration.Migration, error) {
	return migration.Load("sqlite", files)
}

// migrate applies the migrations not yet recorded in schema_migrations, each
// in its own immediate transaction, so concurrent starts on one file
// serialize and apply each migration once.
func migrate(ctx context.Context, db *sql.DB, now func() int64) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := applyMigration(ctx, db, m, now); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration.Migration, now func() int64) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: beginning migration %s: %w", m.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// Created inside the immediate transaction: an autocommit DDL would
	// take a read lock first and, racing another starting instance, could
	// fail with SQLITE_BUSY without waiting.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: creating schema_migrations: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: checking migration %s: %w", m.Name, err)
	}
	if n > 0 {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlite: applying migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, now()); err != nil {
		return fmt.Errorf("sqlite: recording migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: committing migration %s: %w", m.Name, err)
	}
	return nil
}

// busy reports SQLITE_BUSY (any extended code): the database was locked
// in a way the busy timeout does not wait for, such as two connections
// switching a new file to WAL at once.
func busy(err error) bool {
	var se *sqlitedriver.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// migrateRetrying runs migrate, retrying for up to timeout while the
// database is busy.
func migrateRetrying(ctx context.Context, db *sql.DB, now func() int64, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := migrate(ctx, db, now)
		if err == nil || !busy(err) || time.Now().After(end) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
