package postgres_test

import (
	"sync"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/store/pgtest"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
	"github.com/ecsmesh/ecsmesh/controlplane/store/storetest"
)

// testDSN returns the DSN or fails: tests are never skipped for lack of a
// dependency.
func testDSN(t *testing.T) string { return pgtest.DSN(t) }

// freshSchema names a schema unique to this test and drops it at cleanup.
func freshSchema(t *testing.T, dsn string) string { return pgtest.Schema(t, dsn, "ecsmesh_test_") }

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
	dsn := pgtest.DSN(b)
	s, err := postgres.Open(b.Context(), dsn, postgres.WithSchema(pgtest.Schema(b, dsn, "ecsmesh_bench_")))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.Bench(b, s)
}
