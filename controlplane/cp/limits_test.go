package cp

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guard bounds how long a test waits for the server to hang up; it is
// far above the limits under test, not a timing assertion.
const guard = 20 * time.Second

// TestSidecarAPICutsOffSlowClients: a caller of the sidecar API (not yet
// authenticated) cannot hold a connection and its goroutine by sending a
// body slowly, idling, or sending huge headers.
func TestSidecarAPICutsOffSlowClients(t *testing.T) {
	cfg := testConfig(t, nil)
	r := start(t, cfg, func(s *Server) {
		s.apiLimits = httpLimits{readHeader: 5 * time.Second, read: 300 * time.Millisecond, write: 5 * time.Second,
			idle: 300 * time.Millisecond, maxHeaderBytes: 4 << 10, handler: 5 * time.Second}
	})
	pemBytes, err := os.ReadFile(filepath.Join(cfg.DataDir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	dial := func(t *testing.T) *tls.Conn {
		t.Helper()
		conn, err := tls.Dial("tcp", r.srv.Addrs().API, &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// hangsUp reads until the server closes the connection; it fails if the
	// guard expires first, i.e. the server would have kept waiting.
	hangsUp := func(t *testing.T, conn *tls.Conn, br *bufio.Reader) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(guard))
		_, err := io.Copy(io.Discard, br)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server still holds the connection after %v", guard)
		}
	}

	t.Run("slow body", func(t *testing.T) {
		conn := dial(t)
		// The headers promise a body; one byte of it arrives, then nothing.
		if _, err := io.WriteString(conn, "POST /bootstrap HTTP/1.1\r\nHost: cp\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		hangsUp(t, conn, bufio.NewReader(conn))
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn := dial(t)
		if _, err := io.WriteString(conn, "GET /.well-known/jwks.json HTTP/1.1\r\nHost: cp\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		_ = conn.SetReadDeadline(time.Now().Add(guard))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatal("the server closed a keep-alive connection after one request")
		}
		hangsUp(t, conn, br)
	})
	t.Run("huge headers", func(t *testing.T) {
		conn := dial(t)
		if _, err := io.WriteString(conn, "GET /.well-known/jwks.json HTTP/1.1\r\nHost: cp\r\nX-Pad: "+strings.Repeat("a", 16<<10)+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(guard))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
}

// TestDefaultLimitsAreSet guards the production values: every server has
// each limit, and handlers finish before the response can be written.
func TestDefaultLimitsAreSet(t *testing.T) {
	for name, l := range map[string]httpLimits{"api": apiLimits, "admin": adminLimits} {
		srv := l.apply(&http.Server{Handler: http.NotFoundHandler()})
		if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
			t.Errorf("%s: a limit is unset: %+v", name, l)
		}
		if l.handler >= l.write {
			t.Errorf("%s: handler deadline %v is not below the write timeout %v", name, l.handler, l.write)
		}
	}
	if apiLimits.handler <= 0 {
		t.Error("the sidecar API's handlers have no deadline")
	}
}

func TestWithDeadline(t *testing.T) {
	var deadline time.Time
	var ok bool
	h := withDeadline(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { deadline, ok = r.Context().Deadline() }), time.Hour)
	before := time.Now()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !ok || deadline.Before(before.Add(time.Hour)) {
		t.Fatalf("request context deadline = %v, %v; want about an hour from the start", deadline, ok)
	}
}
