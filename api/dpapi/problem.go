package dpapi

import "encoding/json"

// Problem is the one error shape every ecsmesh API answers with:
//
//	{"title": "...", "details": "...", "reason": "snake_case_code",
//	 "causes": [{"field": "...", "message": "..."}]}
//
// with 400 (bad input), 401 (authentication failed), 403 (not authorized),
// 404, 409 (conflict), 413 (too large), 429 (rate limited) and 503
// (dependency down). Reason is stable and meant for programs; Title and
// Details are for people.
type Problem struct {
	// Status is the HTTP status; not serialized.
	Status  int     `json:"-"`
	Title   string  `json:"title"`
	Details string  `json:"details,omitempty"`
	Reason  string  `json:"reason"`
	Causes  []Cause `json:"causes,omitempty"`
}

// Cause is one field-level problem.
type Cause struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error implements error: "reason: title: details".
func (p *Problem) Error() string {
	s := p.Reason + ": " + p.Title
	if p.Details != "" {
		s += ": " + p.Details
	}
	return s
}

// DecodeProblem reads a problem from a response body (for clients and the
// CLI). It returns nil when the body is not a problem.
func DecodeProblem(status int, body []byte) *Problem {
	var p Problem
	if json.Unmarshal(body, &p) != nil || p.Reason == "" {
		return nil
	}
	p.Status = status
	return &p
}
