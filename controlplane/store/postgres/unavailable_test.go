package postgres_test

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/pgtest"
	"github.com/ecsmesh/ecsmesh/controlplane/store/postgres"
)

// cuttableProxy forwards TCP to target until cut.
type cuttableProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

// cut refuses new connections and drops the open ones: the database is gone.
func (p *cuttableProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestUnreachableDatabaseIsUnavailable: once the database is gone (past the
// store's retries) reads and writes fail with store.ErrUnavailable, which
// the APIs answer with 503 store_unavailable so that callers retry.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn, "ecsmesh_test_")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	proxy := newProxy(t, target)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	s, err := postgres.Open(t.Context(), u.String(), postgres.WithSchema(schema), postgres.WithRetries(2, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := store.Key{Kind: "Mesh", Name: "default"}
	if _, err := s.Get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("before the cut: %v", err)
	}
	proxy.cut()
	_, err = s.Get(t.Context(), key)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with the database gone: %v, want store.ErrUnavailable", err)
	}
	if p := problem.From(err); p.Status != 503 || p.Reason != "store_unavailable" {
		t.Errorf("API answer: %d %s, want 503 store_unavailable", p.Status, p.Reason)
	}
	_, err = store.CreateRecord(t.Context(), s, store.Record{Key: key, Spec: []byte(`{}`)})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a write with the database gone: %v, want store.ErrUnavailable", err)
	}
}
