package cp

import (
	"context"
	"net/http"
	"time"
)

// httpLimits bound what one client may hold of an HTTP server: how long
// it may take to send a request (headers, then the whole body), how long
// its connection may idle between requests, how large its headers may be,
// and how long a handler may work on its request.
type httpLimits struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
	// handler is the deadline of each request's context; 0: none.
	handler time.Duration
}

// The sidecar API serves callers that are unauthenticated until their
// login is checked: a slow body, an idle connection or a login waiting on
// AWS must not hold a goroutine for long. The handler deadline (AWS calls
// included) ends before the write timeout so that its error is delivered.
var apiLimits = httpLimits{
	readHeader: 10 * time.Second, read: 30 * time.Second, write: 90 * time.Second, idle: 2 * time.Minute,
	maxHeaderBytes: 64 << 10, handler: time.Minute,
}

// adminLimits: the admin API's requests are small (resources as YAML) and
// its responses are not streamed.
var adminLimits = httpLimits{
	readHeader: 10 * time.Second, read: time.Minute, write: 2 * time.Minute, idle: 2 * time.Minute,
	maxHeaderBytes: 64 << 10,
}

// apply sets the limits on srv and returns it.
func (l httpLimits) apply(srv *http.Server) *http.Server {
	srv.ReadHeaderTimeout = l.readHeader
	srv.ReadTimeout = l.read
	srv.WriteTimeout = l.write
	srv.IdleTimeout = l.idle
	srv.MaxHeaderBytes = l.maxHeaderBytes
	if l.handler > 0 {
		srv.Handler = withDeadline(srv.Handler, l.handler)
	}
	return srv
}

// withDeadline gives each request's context a deadline d from its start.
func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
