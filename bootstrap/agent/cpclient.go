package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
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
	Problem *dpapi.Problem
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

// newCPClient refuses any address but https://HOST[:PORT]: the agent
// sends signed IAM logins and dataplane tokens to it.
func newCPClient(base string, hc *http.Client) (*cpClient, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("agent: --cp-address (KUMA_CONTROL_PLANE_URL) %q must be https://HOST:PORT, e.g. https://ecsmesh-cp:5678: the agent sends IAM logins and tokens to it", base)
	}
	return &cpClient{base: strings.TrimRight(base, "/"), http: hc}, nil
}

// errNoCA names the flags that give the agent a CA for the control plane.
var errNoCA = errors.New("agent: no CA to verify the control plane with: pass --ca-cert-file (KUMA_CONTROL_PLANE_CA_CERT_FILE; the CP's cp-ca.pem) or --ca-cert (KUMA_CONTROL_PLANE_CA_CERT), or --use-system-ca-certs (ECSMESH_DP_USE_SYSTEM_CA_CERTS) when the CP's certificate is from a public CA")

func checkTrust(caFile string, systemRoots bool) error {
	switch {
	case caFile != "" && systemRoots:
		return errors.New("agent: give --ca-cert-file/--ca-cert (KUMA_CONTROL_PLANE_CA_CERT_FILE/KUMA_CONTROL_PLANE_CA_CERT) or --use-system-ca-certs (ECSMESH_DP_USE_SYSTEM_CA_CERTS), not both")
	case caFile == "" && !systemRoots:
		return errNoCA
	}
	return nil
}

// NewHTTPClient returns the agent's client for the control plane: it
// trusts the CA in caFile alone or, with systemRoots (and no caFile), the
// system roots; one of the two is required.
func NewHTTPClient(caFile string, systemRoots bool) (*http.Client, error) {
	if err := checkTrust(caFile, systemRoots); err != nil {
		return nil, err
	}
	var pool *x509.CertPool // nil: the system roots
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("agent: reading --ca-cert-file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("agent: --ca-cert-file %s holds no PEM certificate", caFile)
		}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 90 * time.Second,
	}}, nil
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
		return &CPError{URL: c.base, Path: path, Status: resp.StatusCode, Problem: dpapi.DecodeProblem(resp.StatusCode, data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("agent: decoding the answer of POST %s: %w", path, err)
		}
	}
	return nil
}
