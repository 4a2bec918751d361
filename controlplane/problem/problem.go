// Package problem builds and writes the control plane's error answers in
// the one shape every ecsmesh API uses (dpapi.Problem): constructors, the
// mapping of validation and store errors to statuses, and Write.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ecsmesh/ecsmesh/api/dpapi"

	"github.com/ecsmesh/ecsmesh/api/validation"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Problem is an API error; its wire shape is dpapi.Problem, which the
// sidecar agent decodes.
type Problem = dpapi.Problem

// Cause is one field-level problem.
type Cause = dpapi.Cause

// New returns a problem.
func New(status int, reason, title, details string) *Problem {
	return &Problem{Status: status, Reason: reason, Title: title, Details: details}
}

// Newf returns a problem whose details are formatted.
func Newf(status int, reason, title, format string, args ...any) *Problem {
	return New(status, reason, title, fmt.Sprintf(format, args...))
}

// Invalid turns validation violations into a 400 problem.
func Invalid(title string, verr *validation.Error) *Problem {
	p := New(http.StatusBadRequest, "invalid_resource", title, "")
	for _, v := range verr.Violations {
		p.Causes = append(p.Causes, Cause{Field: v.Field, Message: v.Message})
	}
	if len(p.Causes) > 0 {
		p.Details = fmt.Sprintf("%d violation(s); see causes", len(p.Causes))
	}
	return p
}

// From maps any error to a problem: a *Problem as is, validation errors to
// 400, store errors to 404/409, everything else to 500 without its text
// (internal errors are logged, not shown).
func From(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	if verr, ok := validation.As(err); ok {
		return Invalid("invalid resource", verr)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return New(http.StatusNotFound, "not_found", "not found", err.Error())
	case errors.Is(err, store.ErrConflict):
		return New(http.StatusConflict, "conflict", "the resource changed; read it again and retry", err.Error())
	case errors.Is(err, store.ErrAlreadyExists):
		return New(http.StatusConflict, "already_exists", "the resource already exists", err.Error())
	}
	return Failure(err)
}

// Failure is the answer to an error that is not the caller's: 503
// store_unavailable (retry later) when the database cannot be reached, else
// 500 internal. Neither carries the error's text, which callers log.
func Failure(err error) *Problem {
	if errors.Is(err, store.ErrUnavailable) {
		return New(http.StatusServiceUnavailable, "store_unavailable", "the control plane's database is unavailable", "retry later")
	}
	return New(http.StatusInternalServerError, "internal", "internal error", "")
}

// Write sends err as a problem response.
func Write(w http.ResponseWriter, err error) {
	p := From(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Decode reads a problem from a response body (for clients and the CLI).
// It returns nil when the body is not a problem.
func Decode(status int, body []byte) *Problem { return dpapi.DecodeProblem(status, body) }
