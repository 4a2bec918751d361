package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Backoff bounds of the LISTEN connection's reconnects.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// listen opens the dedicated connection and subscribes it to the channel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cc := s.pool.Config().ConnConfig.Copy()
	// The connection mostly waits: aggressive TCP keepalives detect a dead
	// peer within about half a minute instead of the default minutes.
	dialer := &net.Dialer{Timeout: 10 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}}
	cc.DialFunc = dialer.DialContext
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("postgres: opening the LISTEN connection: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("postgres: listening on %s: %w", s.channel, err)
	}
	return conn, nil
}

// listenLoop turns notifications into events until ctx ends. When the
// connection breaks it reconnects with doubling backoff and, once
// listening again, tells watchers to resync.
func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn) {
	defer close(s.done)
	backoff := listenBackoffMin
	for {
		err := s.receive(ctx, conn)
		_ = conn.Close(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			return
		}
		s.cfg.log.Warn("postgres: LISTEN connection lost; reconnecting", "channel", s.channel, "error", err)
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, listenBackoffMax)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			conn, err = s.listen(cctx)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			s.cfg.log.Warn("postgres: reconnecting the LISTEN connection failed", "channel", s.channel, "error", err)
		}
		s.cfg.log.Info("postgres: LISTEN connection restored", "channel", s.channel)
		backoff = listenBackoffMin
		s.hub.Publish(store.Event{}) // notifications sent while away are lost
	}
}

// receive publishes notifications until the connection fails or ctx ends.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var msg notice
		if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil {
			s.cfg.log.Warn("postgres: undecodable notification; resyncing", "payload", n.Payload, "error", err)
			s.hub.Publish(store.Event{})
			continue
		}
		if msg.Origin == s.origin {
			continue // published to this instance's watchers after the commit
		}
		if msg.Resync {
			s.hub.Publish(store.Event{})
			continue
		}
		s.hub.Publish(store.Event{Op: store.Op(msg.Op), Key: store.Key{Kind: msg.Kind, Mesh: msg.Mesh, Name: msg.Name}, Version: msg.Version})
	}
}
