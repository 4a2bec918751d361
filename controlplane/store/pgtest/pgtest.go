// Package pgtest gives tests a PostgreSQL database: the DSN in
// ECSMESH_TEST_POSTGRES_DSN (without it a test fails, it is never skipped
// for a missing database) and a fresh schema per test, dropped when the
// test ends.
//
// Every test that needs PostgreSQL gets its DSN from DSN (directly or
// through CPEnv), so DSN is also the one switch that leaves them out:
// with ECSMESH_TEST_NO_POSTGRES=1 (set by make test-unit, never by make
// test or CI) it skips the test, saying so.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSNEnv names the variable holding the test database's DSN.
const DSNEnv = "ECSMESH_TEST_POSTGRES_DSN"

// OffEnv names the variable that, set to "1", leaves the PostgreSQL tests
// out: DSN skips them instead of failing. Only make test-unit sets it.
const OffEnv = "ECSMESH_TEST_NO_POSTGRES"

// DSN returns the test database's DSN or fails the test; it skips the
// test when OffEnv is "1".
func DSN(t testing.TB) string {
	t.Helper()
	if os.Getenv(OffEnv) == "1" {
		t.Skip("needs PostgreSQL; left out because " + OffEnv + "=1 (make test-unit)")
	}
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Fatal(DSNEnv + " is not set: PostgreSQL tests are never skipped; start PostgreSQL and export " +
			DSNEnv + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return dsn
}

// Schema returns a new schema name unique to this test, starting with
// prefix, and drops the schema (if created) when the test ends. Register
// it before starting what uses it, so that it is dropped after.
func Schema(t testing.TB, dsn, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// CPEnv returns the environment of a control plane whose store is a fresh
// schema of the test database (KUMA_STORE_POSTGRES_* and
// ECSMESH_STORE_POSTGRES_SCHEMA), and the schema.
func CPEnv(t testing.TB, prefix string) ([]string, string) {
	t.Helper()
	dsn := DSN(t)
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got %q (%v)", DSNEnv, dsn, err)
	}
	tlsMode := map[string]string{"": "disable", "disable": "disable", "allow": "disable", "prefer": "disable",
		"require": "verifyNone", "verify-ca": "verifyCa", "verify-full": "verifyFull"}[u.Query().Get("sslmode")]
	if tlsMode == "" {
		t.Fatalf("%s: unsupported sslmode %q", DSNEnv, u.Query().Get("sslmode"))
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	pass, _ := u.User.Password()
	schema := Schema(t, dsn, prefix)
	return []string{
		"KUMA_STORE_TYPE=postgres",
		"KUMA_STORE_POSTGRES_HOST=" + u.Hostname(),
		"KUMA_STORE_POSTGRES_PORT=" + port,
		"KUMA_STORE_POSTGRES_USER=" + u.User.Username(),
		"KUMA_STORE_POSTGRES_PASSWORD=" + pass,
		"KUMA_STORE_POSTGRES_DB_NAME=" + trimSlash(u.Path),
		"KUMA_STORE_POSTGRES_TLS_MODE=" + tlsMode,
		"ECSMESH_STORE_POSTGRES_SCHEMA=" + schema,
	}, schema
}

func trimSlash(p string) string {
	if len(p) > 0 && p[0] == '/' {
		return p[1:]
	}
	return p
}
