// Package problem is the one error shape every ecsmesh API answers with
// (SPEC §3):
//
//	{"title": "...", "details": "...", "reason": "snake_case_code",
//	 "causes": [{"field": "...", "message": "..."}]}
//
// with 400 (bad input), 401 (authentication failed), 403 (not authorized),
// 404, 409 (conflict), 413 (too large) and 503 (dependency down).
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/validation"
)

// Cause is one field-level problem.
type Cause struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an API error.
type Problem struct {
	// Status is the HTTP status; not serialized.
	Status  int     `json:"-"`
	Title   string  `json:"title"`
	Details string  `json:"details,omitempty"`
	Reason  string  `json:"reason"`
	Causes  []Cause `json:"causes,omitempty"`
}

// Error implements error: "reason: title: details".
func (p *Problem) Error() string {
	s := p.Reason + ": " + p.Title
	if p.Details != "" {
		s += ": " + p.Details
	}
	return s
}

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
func Decode(status int, body []byte) *Problem {
	var p Problem
	if json.Unmarshal(body, &p) != nil || p.Reason == "" {
		return nil
	}
	p.Status = status
	return &p
}
