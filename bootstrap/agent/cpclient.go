package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// maxResponse caps a control plane answer.
const maxResponse = 4 << 20

// CPError is a failed call to the control plane.
type CPError struct {
	// URL is the control plane's base URL.
	URL string
	// Path is the API path called.
	Path string
	// Status is the HTTP status; 0 when the CP was not reached.
	Status int
	// Problem is the CP's error body, when it sent one.
	Problem *problem.Problem
	// Err is the transport error when the CP was not reached.
	Err error
}

// Error names what went wrong and, from the CP's answer, what to fix.
func (e *CPError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("cannot reach control plane at %s: %v", e.URL, e.Err)
	}
	if e.Problem != nil {
		msg := e.Problem.Title
		if e.Problem.Details != "" {
			msg = e.Problem.Details
		}
		for _, c := range e.Problem.Causes {
			msg += fmt.Sprintf("; %s: %s", c.Field, c.Message)
		}
		return fmt.Sprintf("control plane at %s refused POST %s (HTTP %d, reason %s): %s", e.URL, e.Path, e.Status, e.Problem.Reason, msg)
	}
	return fmt.Sprintf("control plane at %s answered POST %s with HTTP %d", e.URL, e.Path, e.Status)
}

// Unwrap returns the transport error.
func (e *CPError) Unwrap() error { return e.Err }

// Retryable reports whether trying again later may succeed: the CP was
// not reached, or answered 5xx or 429. Other 4xx need a fix.
func (e *CPError) Retryable() bool {
	return e.Status == 0 || e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// Reason returns the CP's reason code, if any.
func (e *CPError) Reason() string {
	if e.Problem != nil {
		return e.Problem.Reason
	}
	return ""
}

func retryable(err error) bool {
	var ce *CPError
	return errors.As(err, &ce) && ce.Retryable()
}

// cpClient calls the control plane's sidecar API.
type cpClient struct {
	base string
	http *http.Client
}

func newCPClient(base string, hc *http.Client) (*cpClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("agent: --cp-address %q must be an https URL such as https://ecsmesh-cp:5678", base)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &cpClient{base: strings.TrimRight(base, "/"), http: hc}, nil
}

func (c *cpClient) hostname() string {
	u, _ := url.Parse(c.base)
	return u.Hostname()
}

func (c *cpClient) post(ctx context.Context, path, bearer string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("agent: encoding %s request: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("agent: building %s request: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &CPError{URL: c.base, Path: path, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return &CPError{URL: c.base, Path: path, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return &CPError{URL: c.base, Path: path, Status: resp.StatusCode, Problem: problem.Decode(resp.StatusCode, data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("agent: decoding the answer of POST %s: %w", path, err)
		}
	}
	return nil
}
