package auth

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/controlplane/internal/strictjson"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// RemoteIP is the address of the connection a request came on (never a
// header: X-Forwarded-For is the caller's word).
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// MaxLoginBody caps the body of POST /v1/auth/aws-iam/login.
const MaxLoginBody = dpapi.MaxLoginBody

// LoginResponse is the answer to a successful login.
type LoginResponse = dpapi.LoginResponse

// LoginHandler serves POST /v1/auth/aws-iam/login: a LoginRequest body of
// at most 16 KiB (413 beyond), answered with LoginResponse or a problem.
func (v *Verifier) LoginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			problem.Write(w, problem.New(http.StatusMethodNotAllowed, "method_not_allowed", "use POST", ""))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLoginBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			v.metrics.observe(problem.New(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "", ""))
			problem.Write(w, problem.New(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "login request too large", "the body is capped at 16 KiB"))
			return
		}
		if err != nil {
			problem.Write(w, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "invalid login request", "cannot read the body"))
			return
		}
		var req LoginRequest
		if err := strictjson.Unmarshal(body, &req); err != nil {
			v.metrics.observe(problem.New(http.StatusBadRequest, ReasonInvalidRequest, "", ""))
			problem.Write(w, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "invalid login request", "the body must be a JSON object {mesh, name, proxyType, loginToken}"))
			return
		}
		res, err := v.Authenticate(WithSourceIP(r.Context(), RemoteIP(r)), req, nil)
		if err != nil {
			problem.Write(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(LoginResponse{Token: res.Token, ExpiresAt: res.ExpiresAt})
	})
}
