// Package cp assembles the control plane: store, admin API, sidecar API,
// xDS server, DNS writer, under one context, and shuts them down on
// cancellation.
package cp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ecsmesh/ecsmesh/controlplane/admin"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/gui"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/xds"
)

// Addrs are the addresses the CP actually listens on (useful with :0).
type Addrs struct {
	Admin string
	API   string
	XDS   string
}

// Server is a running control plane.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	store  store.Backend
	reg    *prometheus.Registry
	tokens *token.Issuer
	ca     *ca.Authority
	dns    *dns.Reconciler

	mu    sync.Mutex
	addrs Addrs
	ready chan struct{}

	// apiLimits and adminLimits bound the sidecar and admin API servers.
	apiLimits, adminLimits httpLimits
}

// New opens the store and prepares the servers; Run starts them.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Auth.ProxyType == config.AuthAWSIAM && len(cfg.Auth.AuthorizedAccountIDs) == 0 {
		log.Warn("KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS is empty: every sidecar login will be refused (account_not_allowed) until you list the AWS accounts allowed to join")
	}
	tokens, err := token.New(token.Config{Store: st, Logger: log.With("component", "token")})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("starting token issuer: %w", err)
	}
	authority, err := ca.New(ca.Config{Store: st, Logger: log.With("component", "ca")})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("starting mesh CA: %w", err)
	}
	reg.MustRegister(authority.Collector())
	return &Server{cfg: cfg, log: log, store: st, reg: reg, tokens: tokens, ca: authority, ready: make(chan struct{}),
		apiLimits: apiLimits, adminLimits: adminLimits}, nil
}

// Tokens returns the token issuer (dataplane tokens, JWT-SVIDs, JWKS).
func (s *Server) Tokens() *token.Issuer { return s.tokens }

// CA returns the mesh certificate authority.
func (s *Server) CA() *ca.Authority { return s.ca }

// Store returns the CP's store.
func (s *Server) Store() store.Backend { return s.store }

// Ready is closed once every listener is up.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound addresses once Ready is closed.
func (s *Server) Addrs() Addrs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs
}

// Run serves until ctx ends, then shuts down gracefully (in-flight
// requests get up to 10 s) and closes the store.
func (s *Server) Run(ctx context.Context) error {
	defer s.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	waitBackground := s.startBackground(ctx)
	defer waitBackground()
	defer cancel()

	tlsCfg, err := s.prepareTLS(ctx)
	if err != nil {
		return err
	}
	adminTLS, err := s.adminTLS(tlsCfg)
	if err != nil {
		return err
	}
	lns, err := s.listen()
	if err != nil {
		return err
	}
	verifier, verr := s.newVerifier(ctx)
	xo := xds.Options{
		Store: s.store, Tokens: s.tokens, CA: s.ca, Logger: s.log,
		VIPPort: s.cfg.DNS.VIPPort, Domain: s.cfg.DNS.Domain, InstanceID: s.cfg.InstanceID, TLS: tlsCfg,
		WasmPath: s.cfg.FilterWasmPath, GoPath: s.cfg.FilterGoPath, AutoReachable: s.cfg.AutoReachableServices,
	}
	if verifier != nil {
		xo.RoleChecker = verifier
	}
	xdsSrv, err := xds.NewServer(xo)
	if err != nil {
		lns.close()
		return fmt.Errorf("starting xDS server: %w", err)
	}
	s.register("xDS", xdsSrv.Collectors())
	apiSrv := s.apiServer(tlsCfg, verifier, verr)
	adminSrv, err := s.adminServer(ctx, xdsSrv)
	if err != nil {
		lns.close()
		return err
	}

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	serve := func(name string, run func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
				errc <- fmt.Errorf("%s server: %w", name, err)
			}
		}()
	}
	xdsCtx, stopXDS := context.WithCancel(ctx)
	defer stopXDS()
	serve("admin", func() error {
		if adminTLS != nil {
			return adminSrv.Serve(tls.NewListener(lns.admin, adminTLS))
		}
		return adminSrv.Serve(lns.admin)
	})
	serve("api", func() error { return apiSrv.Serve(tls.NewListener(lns.api, tlsCfg)) })
	serve("xDS", func() error { return xdsSrv.Serve(xdsCtx, lns.xds) })
	a := s.Addrs()
	s.log.Info("admin API listening", "addr", a.Admin, "scheme", map[bool]string{false: "http", true: "https"}[adminTLS != nil])
	s.log.Info("sidecar API listening (HTTPS)", "addr", a.API)
	s.log.Info("ADS listening (gRPC, TLS)", "addr", a.XDS)
	close(s.ready)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("stopping", "error", runErr)
	}
	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()
	_ = adminSrv.Shutdown(shutdownCtx)
	_ = apiSrv.Shutdown(shutdownCtx)
	stopXDS()
	wg.Wait()
	s.log.Info("control plane stopped")
	return runErr
}

// startBackground runs the token, CA and DNS loops until ctx ends; the
// returned func waits for them.
func (s *Server) startBackground(ctx context.Context) func() {
	var wg sync.WaitGroup
	for name, run := range map[string]func(context.Context) error{"token": s.tokens.Run, "ca": s.ca.Run, "dns": s.runDNS} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("background loop stopped", "loop", name, "error", err)
			}
		}()
	}
	return wg.Wait
}

// prepareTLS returns the API and xDS TLS configuration and writes the CP
// CA's certificate for local agents.
func (s *Server) prepareTLS(ctx context.Context) (*tls.Config, error) {
	tlsCfg, caPEM, err := s.serverTLS(ctx)
	if err != nil {
		return nil, err
	}
	if p, err := writeCAFile(s.cfg.DataDir, caPEM); err != nil {
		s.log.Warn("cannot write the CP CA certificate for agents", "error", err)
	} else if p != "" {
		s.log.Info("control plane CA certificate written (agents: --ca-cert-file)", "path", p)
	}
	return tlsCfg, nil
}

// listeners are the CP's three sockets.
type listeners struct{ api, xds, admin net.Listener }

func (l listeners) close() {
	for _, ln := range []net.Listener{l.api, l.xds, l.admin} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// listen binds the three addresses (all or none) and records them.
func (s *Server) listen() (listeners, error) {
	var l listeners
	for _, b := range []struct {
		addr, env string
		dst       *net.Listener
	}{
		{s.cfg.APIAddr, "ECSMESH_API_ADDR", &l.api},
		{s.cfg.XDSAddr, "ECSMESH_XDS_ADDR", &l.xds},
		{s.cfg.AdminAddr, "ECSMESH_ADMIN_ADDR", &l.admin},
	} {
		ln, err := net.Listen("tcp", b.addr)
		if err != nil {
			l.close()
			return listeners{}, fmt.Errorf("listening on %s %s: %w", b.env, b.addr, err)
		}
		*b.dst = ln
	}
	s.mu.Lock()
	s.addrs = Addrs{API: l.api.Addr().String(), XDS: l.xds.Addr().String(), Admin: l.admin.Addr().String()}
	s.mu.Unlock()
	return l, nil
}

// apiServer is the sidecar API: /.well-known and the routes of
// apiHandlers (bootstrap, login, health sync).
func (s *Server) apiServer(tlsCfg *tls.Config, verifier *auth.Verifier, verr error) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/", s.tokens.Handler())
	for pattern, h := range s.apiHandlers(verifier, verr) {
		mux.Handle(pattern, h)
	}
	return s.apiLimits.apply(&http.Server{Handler: mux, TLSConfig: tlsCfg})
}

// adminServer is the admin API, with the GUI under /gui/.
func (s *Server) adminServer(ctx context.Context, inspector admin.Inspector) (*http.Server, error) {
	mgr := manager.New(s.store, hostnameCheck)
	g, err := gui.New(gui.Options{
		Manager: mgr, Store: s.store, Inspector: inspector, DNS: s.DNSStatus, Metrics: s.reg,
		Domain: s.cfg.DNS.Domain, ZoneID: s.cfg.Route53.HostedZoneID, InstanceID: s.cfg.InstanceID,
		Token: s.cfg.AdminToken, Logger: s.log.With("component", "gui"),
	})
	if err != nil {
		return nil, err
	}
	go g.Run(ctx) // samples the refusal counters for the overview's last hour
	return s.adminLimits.apply(&http.Server{
		Handler: admin.Handler(admin.Options{
			Manager:   mgr,
			Logger:    s.log,
			Token:     s.cfg.AdminToken,
			Metrics:   promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}),
			Ready:     s.checkReady,
			WellKnown: s.tokens.Handler(),
			Inspector: inspector,
			Rotator:   rotator{ca: s.ca, tokens: s.tokens},
			GUI:       g.Handler(),
		}),
		// TLS handshake errors (scanners, plain-HTTP clients) are noise.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}), nil
}

// register adds collectors to the CP's registry; a clash is logged, not fatal.
func (s *Server) register(what string, cs []prometheus.Collector) {
	for _, c := range cs {
		if err := s.reg.Register(c); err != nil {
			s.log.Warn("registering "+what+" metrics", "error", err)
		}
	}
}

func (s *Server) checkReady(ctx context.Context) error {
	select {
	case <-s.ready:
	default:
		return errors.New("starting")
	}
	if _, err := s.store.List(ctx, "Mesh", store.ListOptions{}); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// rotator adapts the CA and the token issuer to the admin API.
type rotator struct {
	ca     *ca.Authority
	tokens *token.Issuer
}

func (r rotator) RotateCA(ctx context.Context, mesh string) error { return r.ca.Rotate(ctx, mesh) }

func (r rotator) RotateSigningKeys(ctx context.Context, mesh string) ([]string, error) {
	return r.tokens.RotateKeys(ctx, mesh)
}

var _ admin.Revoker = rotator{}

// RevokeDataplane lets the admin API revoke a Dataplane's tokens.
func (r rotator) RevokeDataplane(ctx context.Context, mesh, name string) (time.Time, error) {
	return r.tokens.RevokeDataplane(ctx, mesh, name)
}
