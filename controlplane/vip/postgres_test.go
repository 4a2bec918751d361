package vip

import (
	"context"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/store/pgtest"

	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
)

// TestConcurrentAllocatorsPostgres: two CP instances (two store
// connections) on one PostgreSQL allocate for 500 new services at once.
func TestConcurrentAllocatorsPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	schema := pgtest.Schema(t, dsn, "vip_test_")
	st1, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
	if err != nil {
		t.Fatalf("opening PostgreSQL at ECSMESH_TEST_POSTGRES_DSN: %v", err)
	}
	defer st1.Close()
	st2, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
	if err != nil {
		t.Fatalf("opening PostgreSQL again: %v", err)
	}
	defer st2.Close()
	testConcurrent(t, st1, st2, false)
}
