package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// client calls the admin API.
type client struct {
	base  string
	token string
	http  *http.Client
	// err is a configuration problem (bad URL or CA file), reported by do.
	err error
}

func (g *globals) client() *client {
	c := &client{base: strings.TrimRight(g.api, "/"), token: g.token}
	c.http, c.err = g.httpClient()
	return c
}

// httpClient checks the URL and builds a client trusting the admin API's
// CA. The token never travels in clear off loopback: the CP serves its
// admin API over HTTPS there, so an http:// URL naming another host is a
// mistake or a trap.
func (g *globals) httpClient() (*http.Client, error) {
	u, err := url.Parse(g.api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api (ECSMESH_API) must be an http:// or https:// URL such as http://127.0.0.1:5681, got %q", g.api)
	}
	if u.Scheme == "http" && g.token != "" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send ECSMESH_ADMIN_TOKEN in clear to %s: use https://%s (off loopback the CP serves its admin API over HTTPS)", u.Host, u.Host)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case g.caFile != "":
		pool, err := readPool(g.caFile, x509.NewCertPool())
		if err != nil {
			return nil, fmt.Errorf("--ca-cert-file (ECSMESH_API_CA_CERT_FILE): %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	case u.Scheme == "https":
		if _, err := os.Stat(g.caDefault); err == nil {
			system, err := x509.SystemCertPool()
			if err != nil {
				system = x509.NewCertPool()
			}
			pool, err := readPool(g.caDefault, system)
			if err != nil {
				return nil, fmt.Errorf("the CP's CA certificate (ECSMESH_DATA_DIR): %w", err)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}

func readPool(file string, pool *x509.CertPool) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// do sends a request and returns the body of a 2xx answer; other answers
// become errors carrying the API's problem (title, details, causes).
func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
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
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("the admin API at %s presented a certificate this machine does not trust; pass the CP's CA with --ca-cert-file (or ECSMESH_API_CA_CERT_FILE; the CP writes it to $ECSMESH_DATA_DIR/cp-ca.pem): %w", c.base, err)
		}
		return nil, fmt.Errorf("cannot reach the control plane admin API at %s (set --api or ECSMESH_API): %w", c.base, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading answer from %s: %w", c.base, err)
	}
	if resp.StatusCode == http.StatusBadRequest && bytes.Contains(out, []byte("HTTP request to an HTTPS server")) {
		return nil, fmt.Errorf("the admin API at %s serves HTTPS (it listens off loopback, or has ECSMESH_ADMIN_TLS_CERT_FILE): use --api %s", c.base, "https"+strings.TrimPrefix(c.base, "http"))
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
