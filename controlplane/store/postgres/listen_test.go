package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
	"github.com/ecsmesh/ecsmesh/controlplane/store/storetest"
)

// TestConcurrentOpen starts several stores on one fresh schema at once:
// the advisory lock lets exactly one of them migrate.
func TestConcurrentOpen(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn, postgres.WithSchema(schema), postgres.WithMaxConns(2))
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(context.Background())
	var applied int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&applied); err != nil {
		t.Fatalf("counting migrations: %v", err)
	}
	if applied != 1 {
		t.Fatalf("schema_migrations has %d rows, want 1", applied)
	}
}

// TestListenReconnects kills the LISTEN connection's backend: the store
// reconnects, tells watchers to resync, and hears changes again.
func TestListenReconnects(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	listener, writer := openIn(t, dsn, schema), openIn(t, dsn, schema)
	defer listener.Close()
	defer writer.Close()
	ctx := t.Context()
	events, err := listener.Watch(ctx)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(context.Background())
	// Both stores listen on the schema's channel; killing both is fine.
	tag, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = $1`, `LISTEN `+pgx.Identifier{postgres.ChannelPrefix + "_" + schema}.Sanitize())
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("terminating the LISTEN backends: %v (%d rows)", err, tag.RowsAffected())
	}
	waitEvent(t, events, "resync marker", func(e store.Event) bool { return e.Op == 0 })
	k := store.Key{Kind: "Mesh", Name: "after-reconnect"}
	if _, err := store.CreateRecord(ctx, writer, store.Record{Key: k, Spec: []byte(`{}`)}); err != nil {
		t.Fatalf("create: %v", err)
	}
	waitEvent(t, events, "creation after reconnect", func(e store.Event) bool { return e.Key == k && e.Op == store.Created })
}

func waitEvent(t *testing.T, ch <-chan store.Event, what string, match func(store.Event) bool) {
	t.Helper()
	timer := time.NewTimer(storetest.Deadline)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("waiting for %s: watch closed", what)
			}
			if match(e) {
				return
			}
		case <-timer.C:
			t.Fatalf("no %s within %v", what, storetest.Deadline)
		}
	}
}
