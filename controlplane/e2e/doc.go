// Package e2e holds end-to-end tests of the control plane run as real
// processes on loopback: the ecsmesh-cp binary (built once per test run),
// the local AWS of internal/dev/devcloud, PostgreSQL, and — when an Envoy
// binary is available (ENVOY_BIN) — real Envoys loading the built filter.
//
// The package has no non-test code; this file only documents it.
//
//	ECSMESH_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	    go test -count=1 ./controlplane/e2e/
//
// PostgreSQL is required (the tests fail, never skip, without
// ECSMESH_TEST_POSTGRES_DSN). The one allowed skip is TestEnvoyEndToEnd
// when ENVOY_BIN is not set; make test-unit (ECSMESH_TEST_NO_POSTGRES=1)
// also skips the tests that need PostgreSQL.
package e2e
