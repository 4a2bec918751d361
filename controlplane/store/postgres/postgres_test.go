package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
	"github.com/ecsmesh/ecsmesh/controlplane/store/storetest"
)

// DSNEnv names the variable holding the test database's DSN.
const DSNEnv = "ECSMESH_TEST_POSTGRES_DSN"

// testDSN returns the DSN or fails: tests are never skipped for lack of a
// dependency.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Fatal(DSNEnv + " is not set: start PostgreSQL and export " + DSNEnv +
			"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return dsn
}

// freshSchema names a schema unique to this test and drops it at cleanup.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "ecsmesh_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

func openIn(t *testing.T, dsn, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.WithSchema(schema), postgres.WithMaxConns(6))
	if err != nil {
		t.Fatalf("opening postgres in schema %s: %v", schema, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	var mu sync.Mutex
	schemas := map[*testing.T]string{}
	storetest.Run(t,
		func(t *testing.T) store.Backend {
			schema := freshSchema(t, dsn)
			mu.Lock()
			schemas[t] = schema
			mu.Unlock()
			return openIn(t, dsn, schema)
		},
		func(t *testing.T) store.Backend {
			mu.Lock()
			schema := schemas[t]
			mu.Unlock()
			if schema == "" {
				t.Fatal("openSecond before open")
			}
			return openIn(t, dsn, schema)
		},
		storetest.Capabilities{Persistent: true, CrossInstanceWatch: true})
}

func BenchmarkStore(b *testing.B) {
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		b.Fatal(DSNEnv + " is not set: start PostgreSQL and export " + DSNEnv)
	}
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	schema := "ecsmesh_bench_" + hex.EncodeToString(rnd)
	s, err := postgres.Open(b.Context(), dsn, postgres.WithSchema(schema))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			_, _ = conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
			_ = conn.Close(context.Background())
		}
	}()
	defer s.Close()
	storetest.Bench(b, s)
}
