package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// retry runs op until it succeeds, fails for good, or the retries are
// spent. Only idempotent operations (reads, lease upserts) may use it.
func (s *Store) retry(ctx context.Context, doing string, op func() error) error {
	return s.retryIf(ctx, doing, transient, op)
}

// retryIf retries op while retryable(err) holds, with doubling backoff.
func (s *Store) retryIf(ctx context.Context, doing string, retryable func(error) bool, op func() error) error {
	wait := s.cfg.backoff
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt >= s.cfg.retries || s.closed.Load() || ctx.Err() != nil || !retryable(err) {
			if err != nil && transient(err) {
				return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
			}
			return err
		}
		s.cfg.log.Debug("postgres: retrying after a transient error", "doing", doing, "attempt", attempt+1, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

// transient reports errors worth retrying for an idempotent operation:
// lost or refused connections, server shutdowns, serialization failures
// and deadlocks.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrClosed) {
		return false
	}
	if rolledBack(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || // connection exception
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || // shutdown, cannot connect now
			pgErr.Code == "53300" // too many connections
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// writeRetryable reports errors after which a write transaction certainly
// did not commit and may run again: nothing reached the server, or the
// server rolled it back (serialization failure, deadlock).
func writeRetryable(err error) bool {
	if errors.Is(err, store.ErrClosed) {
		return false
	}
	return rolledBack(err) || pgconn.SafeToRetry(err)
}

func rolledBack(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
