// Package awsfault injects failures into ecsmesh's fake AWS services:
// throttling, 5xx, stalls, redirects, arbitrary bodies and AWS errors, each
// for a number of requests or until cleared.
package awsfault

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// Kind is what a fault does.
type Kind int

// Kinds of faults.
const (
	// Throttle answers the protocol's throttling error (Throttling /
	// ThrottlingException, 400).
	Throttle Kind = iota + 1
	// ServerError answers 500 InternalFailure (or Status/Code if set).
	ServerError
	// Stall waits Delay (or until the client gives up) before serving the
	// request normally.
	Stall
	// Redirect answers 307 to Location.
	Redirect
	// Body answers Status with ContentType and Body verbatim.
	Body
	// Error answers the AWS error Code/Message with Status.
	Error
)

// Fault is one injected failure.
type Fault struct {
	Kind Kind
	// Times is how many requests it affects; 0 means until Clear.
	Times       int
	Status      int
	Code        string
	Message     string
	ContentType string
	Body        string
	Delay       time.Duration
	Location    string
}

// Protocol is how a fake renders errors.
type Protocol int

// Protocols.
const (
	// XML is the query / REST-XML error shape (STS, IAM, Route53).
	XML Protocol = iota + 1
	// JSON is the JSON 1.1 error shape (ECS).
	JSON
)

// Injector holds pending faults. The zero value is ready; safe for
// concurrent use.
type Injector struct {
	mu     sync.Mutex
	faults []*Fault
	hits   int
}

// Inject queues f; faults apply in order.
func (i *Injector) Inject(f Fault) {
	i.mu.Lock()
	defer i.mu.Unlock()
	c := f
	i.faults = append(i.faults, &c)
}

// Clear drops every pending fault.
func (i *Injector) Clear() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.faults = nil
}

// Hits returns how many requests a fault was applied to.
func (i *Injector) Hits() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits
}

func (i *Injector) take() (Fault, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.faults) == 0 {
		return Fault{}, false
	}
	f := i.faults[0]
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			i.faults = i.faults[1:]
		}
	}
	i.hits++
	return *f, true
}

// Serve applies the next fault to the request. It returns true when it
// answered (the fake must not), false when the fake should serve normally
// (no fault, or a Stall that has elapsed).
func (i *Injector) Serve(w http.ResponseWriter, r *http.Request, p Protocol, xmlns string) bool {
	f, ok := i.take()
	if !ok {
		return false
	}
	rid := sigv4check.RequestID()
	writeErr := func(status int, code, msg string) {
		e := sigv4check.Errorf(status, code, "%s", msg)
		if p == JSON {
			sigv4check.WriteJSON(w, e, rid)
		} else {
			sigv4check.WriteXML(w, e, xmlns, rid)
		}
	}
	switch f.Kind {
	case Throttle:
		code := "Throttling"
		if p == JSON {
			code = "ThrottlingException"
		}
		writeErr(http.StatusBadRequest, or(f.Code, code), or(f.Message, "Rate exceeded"))
	case ServerError:
		writeErr(orInt(f.Status, http.StatusInternalServerError), or(f.Code, "InternalFailure"), or(f.Message, "We encountered an internal error. Please try again."))
	case Stall:
		// Read the body first: the server notices a client hanging up
		// (and cancels r.Context) only once the body was consumed.
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
			return true
		}
	case Redirect:
		w.Header().Set("Location", f.Location)
		w.WriteHeader(orInt(f.Status, http.StatusTemporaryRedirect))
	case Body:
		if f.ContentType != "" {
			w.Header().Set("Content-Type", f.ContentType)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
		w.WriteHeader(orInt(f.Status, http.StatusOK))
		_, _ = w.Write([]byte(f.Body))
	case Error:
		writeErr(orInt(f.Status, http.StatusBadRequest), f.Code, f.Message)
	default:
		return false
	}
	return true
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func orInt(n, def int) int {
	if n != 0 {
		return n
	}
	return def
}
