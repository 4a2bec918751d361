package cp

import (
	"context"
	"net/http"
)

// apiHandlers returns the sidecar API routes beyond /.well-known:
// /bootstrap, /v1/auth/aws-iam/login and /v1/health-sync.
func (s *Server) apiHandlers(_ context.Context) map[string]http.Handler {
	return map[string]http.Handler{}
}
