package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// client calls the admin API.
type client struct {
	base  string
	token string
	http  *http.Client
}

func (g *globals) client() *client {
	return &client{base: strings.TrimRight(g.api, "/"), token: g.token, http: &http.Client{Timeout: 30 * time.Second}}
}

// do sends a request and returns the body of a 2xx answer; other answers
// become errors carrying the API's problem (title, details, causes).
func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", c.base, err)
	}
	if method != http.MethodGet && method != http.MethodHead {
		// YAML is a superset of JSON; the admin API refuses writes of any
		// type a browser could send cross-origin.
		req.Header.Set("Content-Type", "application/yaml")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the control plane admin API at %s (set --api or ECSMESH_API): %w", c.base, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading answer from %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		if p := problem.Decode(resp.StatusCode, out); p != nil {
			return nil, &apiError{p: p}
		}
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// apiError prints a problem the way a person reads it.
type apiError struct{ p *problem.Problem }

func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString(e.p.Title)
	if e.p.Details != "" {
		b.WriteString(": " + e.p.Details)
	}
	b.WriteString(" (" + e.p.Reason + ")")
	for _, c := range e.p.Causes {
		b.WriteString("\n  " + c.Field + ": " + c.Message)
	}
	return b.String()
}
