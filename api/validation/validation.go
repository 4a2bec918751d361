// Package validation collects every violation found in a resource, each with
// the path of the field it concerns, and returns them all at once.
//
// The shape follows Kuma's pkg/core/validators: a validator walks the whole
// resource, adds a Violation per problem and never stops at the first one,
// so that a user fixes a file in one round trip.
package validation

import (
	"errors"
	"strconv"
	"strings"
)

// Violation is one problem with one field.
type Violation struct {
	// Field is the path of the offending field, e.g.
	// "networking.inbound[0].servicePort". Empty for the whole document.
	Field string `json:"field"`
	// Message says what is wrong and, where it helps, what to do.
	Message string `json:"message"`
}

// Error is a set of violations. The zero value is empty and ready to use.
type Error struct {
	Violations []Violation
}

// Error renders every violation on one line each, "field: message".
func (e *Error) Error() string {
	if e == nil || len(e.Violations) == 0 {
		return "validation: no violations"
	}
	var b strings.Builder
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		if v.Field != "" {
			b.WriteString(v.Field)
			b.WriteString(": ")
		}
		b.WriteString(v.Message)
	}
	return b.String()
}

// Add records a violation of field.
func (e *Error) Add(field Path, message string) {
	e.Violations = append(e.Violations, Violation{Field: field.String(), Message: message})
}

// Merge adds every violation of other, each field prefixed with prefix.
func (e *Error) Merge(prefix Path, other *Error) {
	if other == nil {
		return
	}
	for _, v := range other.Violations {
		e.Violations = append(e.Violations, Violation{Field: prefix.Join(v.Field), Message: v.Message})
	}
}

// Empty reports whether no violation was recorded.
func (e *Error) Empty() bool { return e == nil || len(e.Violations) == 0 }

// OrNil returns e when it holds violations and nil otherwise, so that a
// validator can end with `return verr.OrNil()` without a typed-nil error.
func (e *Error) OrNil() error {
	if e.Empty() {
		return nil
	}
	return e
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var v *Error
	if errors.As(err, &v) {
		return v, true
	}
	return nil, false
}

// Path is a field path under construction. The zero value is the root.
type Path struct{ s string }

// Root is the empty path.
func Root() Path { return Path{} }

// Field returns the path of the named child field.
func (p Path) Field(name string) Path {
	if p.s == "" {
		return Path{name}
	}
	return Path{p.s + "." + name}
}

// Index returns the path of the i-th element of a list.
func (p Path) Index(i int) Path { return Path{p.s + "[" + strconv.Itoa(i) + "]"} }

// Key returns the path of a map entry, quoted: labels["kuma.io/service"].
func (p Path) Key(k string) Path { return Path{p.s + "[" + strconv.Quote(k) + "]"} }

// Join appends a rendered sub-path to p.
func (p Path) Join(sub string) string {
	switch {
	case p.s == "":
		return sub
	case sub == "":
		return p.s
	case strings.HasPrefix(sub, "["):
		return p.s + sub
	default:
		return p.s + "." + sub
	}
}

// String renders the path.
func (p Path) String() string { return p.s }
