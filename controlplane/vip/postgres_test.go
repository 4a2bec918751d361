package vip

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
)

// TestConcurrentAllocatorsPostgres: two CP instances (two store
// connections) on one PostgreSQL allocate for 500 new services at once.
func TestConcurrentAllocatorsPostgres(t *testing.T) {
	dsn := os.Getenv("ECSMESH_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Fatal("ECSMESH_TEST_POSTGRES_DSN is not set: PostgreSQL tests need it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("vip_test_%d", time.Now().UnixNano())
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
