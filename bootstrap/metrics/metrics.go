// Package metrics is the sidecar's Prometheus endpoint, served by the
// agent: one scrape merges Envoy's stats (read from Envoy's admin API on
// loopback; the admin API itself is never exposed), the agent's own
// metrics and the task's applications' endpoints, and labels every series
// with the Dataplane's mesh, service and workload. The control plane says
// where it listens and what it scrapes (MeshMetric, delivered with each
// health sync); Apply follows those changes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
)

// Defaults of Config.
const (
	DefaultMaxBytes = 16 << 20
	DefaultTimeout  = 5 * time.Second
	// maxScrapes bounds concurrent scrapes: each one reads Envoy's admin
	// and every application; more are answered 503.
	maxScrapes = 2
)

// Config configures a Server.
type Config struct {
	// Gatherer is the agent's own registry; ScrapeErrors is registered
	// on Registerer. Both may be the same *prometheus.Registry.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// AdminPort returns Envoy's admin port on 127.0.0.1 (0 while Envoy is
	// not started: its stats are skipped).
	AdminPort func() int
	// Client reads the sources; nil uses one without proxies.
	Client *http.Client
	// MaxBytes caps each source's response (default 16 MiB); Timeout
	// bounds each source (default 5s).
	MaxBytes int64
	Timeout  time.Duration
	// Listen opens the endpoint's listener; nil uses net.Listen.
	Listen func(network, addr string) (net.Listener, error)
	Logger *slog.Logger
}

// Server serves the endpoint the last Apply configured.
type Server struct {
	cfg    Config
	errs   *prometheus.CounterVec
	sem    chan struct{}
	mu     sync.Mutex
	conf   *view
	srv    *http.Server
	ln     net.Listener
	listen string
}

// view is an applied configuration with its matchers compiled.
type view struct {
	m       dpapi.Metrics
	include []matcher
	exclude []matcher
}

type matcher func(string) bool

// New returns a Server that serves nothing until Apply.
func New(cfg Config) (*Server, error) {
	if cfg.Gatherer == nil || cfg.Registerer == nil || cfg.AdminPort == nil {
		return nil, errors.New("metrics: a gatherer, a registerer and the admin port are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: false, MaxIdleConnsPerHost: 2}}
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecsmesh_dp_metrics_scrape_errors_total",
		Help: "Sources left out of a scrape of the sidecar's metrics endpoint, by source (envoy, agent, app/<name or port>).",
	}, []string{"source"})
	if err := cfg.Registerer.Register(errs); err != nil {
		return nil, fmt.Errorf("metrics: registering the scrape error counter: %w", err)
	}
	return &Server{cfg: cfg, errs: errs, sem: make(chan struct{}, maxScrapes)}, nil
}

// Apply makes the server serve m: it opens the listener, moves it to a new
// port, or closes it (m nil). Path, filters, applications and labels
// change without closing the listener. An error (the port is taken)
// leaves no listener; the next Apply tries again.
func (s *Server) Apply(m *dpapi.Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m == nil {
		s.closeLocked()
		s.conf = nil
		return nil
	}
	v, err := compile(*m)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("0.0.0.0", strconv.Itoa(m.Port))
	if s.ln != nil && s.listen == addr {
		s.conf = v
		return nil
	}
	s.closeLocked()
	ln, err := s.cfg.Listen("tcp", addr)
	if err != nil {
		s.conf = nil
		return fmt.Errorf("metrics: listening on %s for the MeshMetric endpoint: %w", addr, err)
	}
	s.ln, s.listen, s.conf = ln, addr, v
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
	go func(srv *http.Server, ln net.Listener) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Warn("metrics endpoint stopped", "error", err)
		}
	}(s.srv, ln)
	s.cfg.Logger.Info("serving metrics", "addr", addr, "path", m.Path)
	return nil
}

// Addr is the listener's address, "" when closed.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close closes the listener.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	s.conf = nil
}

func (s *Server) closeLocked() {
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
		_ = s.srv.Close()
	}
	s.srv, s.ln, s.listen = nil, nil, ""
}

func compile(m dpapi.Metrics) (*view, error) {
	if m.Port < 1 || m.Port > 65535 {
		return nil, fmt.Errorf("metrics: port %d from the control plane is not a port", m.Port)
	}
	if !strings.HasPrefix(m.Path, "/") {
		return nil, fmt.Errorf("metrics: path %q from the control plane is not absolute", m.Path)
	}
	v := &view{m: m}
	var err error
	if v.include, err = matchers(m.Include); err != nil {
		return nil, err
	}
	if v.exclude, err = matchers(m.Exclude); err != nil {
		return nil, err
	}
	return v, nil
}

func matchers(ms []dpapi.MetricMatch) ([]matcher, error) {
	out := make([]matcher, 0, len(ms))
	for _, m := range ms {
		want := m.Match
		switch m.Type {
		case "Prefix":
			out = append(out, func(n string) bool { return strings.HasPrefix(n, want) })
		case "Exact":
			out = append(out, func(n string) bool { return n == want })
		case "Contains":
			out = append(out, func(n string) bool { return strings.Contains(n, want) })
		case "Regex":
			re, err := regexp.Compile(want)
			if err != nil {
				return nil, fmt.Errorf("metrics: regex %q from the control plane: %w", want, err)
			}
			out = append(out, re.MatchString)
		default:
			return nil, fmt.Errorf("metrics: match type %q from the control plane is not Prefix, Exact, Contains or Regex", m.Type)
		}
	}
	return out, nil
}

// publishes reports whether Envoy's family name is published: in the
// profile and not excluded, or included.
func (v *view) publishes(name string) bool {
	hit := func(ms []matcher) bool { return slices.ContainsFunc(ms, func(m matcher) bool { return m(name) }) }
	if hit(v.include) {
		return true
	}
	return v.m.AllEnvoy && !hit(v.exclude)
}
