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
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
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
	if cfg.Auth.ProxyType == config.AuthAWSIAM && cfg.Auth.ServerID == config.Default().Auth.ServerID {
		log.Warn("ECSMESH_AWSIAM_SERVER_ID is the default; set a value unique to this control plane so logins signed for another service cannot be replayed here", "default", cfg.Auth.ServerID)
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
	return &Server{cfg: cfg, log: log, store: st, reg: reg, tokens: tokens, ca: authority, ready: make(chan struct{})}, nil
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
	defer cancel()

	mgr := manager.New(s.store, hostnameCheck)
	var bg sync.WaitGroup
	defer bg.Wait()
	for name, run := range map[string]func(context.Context) error{"token": s.tokens.Run, "ca": s.ca.Run, "dns": s.runDNS} {
		bg.Add(1)
		go func() {
			defer bg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("background loop stopped", "loop", name, "err", err)
			}
		}()
	}
	defer cancel()

	tlsCfg, caPEM, err := s.serverTLS(ctx)
	if err != nil {
		return err
	}
	if p, err := writeCAFile(s.cfg.DataDir, caPEM); err != nil {
		s.log.Warn("cannot write the CP CA certificate for agents", "err", err)
	} else if p != "" {
		s.log.Info("control plane CA certificate written (agents: --ca-cert-file)", "path", p)
	}
	apiLn, err := net.Listen("tcp", s.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listening on ECSMESH_API_ADDR %s: %w", s.cfg.APIAddr, err)
	}
	apiMux := http.NewServeMux()
	apiMux.Handle("GET /.well-known/", s.tokens.Handler())
	for pattern, h := range s.apiHandlers(ctx) {
		apiMux.Handle(pattern, h)
	}
	apiSrv := &http.Server{Handler: apiMux, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	s.mu.Lock()
	s.addrs.API = apiLn.Addr().String()
	s.mu.Unlock()
	xdsSrv, err := xds.NewServer(xds.Options{
		Store: s.store, Tokens: s.tokens, CA: s.ca, Logger: s.log,
		VIPPort: s.cfg.DNS.VIPPort, Domain: s.cfg.DNS.Domain, InstanceID: s.cfg.InstanceID, TLS: tlsCfg,
		WasmPath: s.cfg.FilterWasmPath, GoPath: s.cfg.FilterGoPath,
	})
	if err != nil {
		return fmt.Errorf("starting xDS server: %w", err)
	}
	for _, c := range xdsSrv.Collectors() {
		if err := s.reg.Register(c); err != nil {
			s.log.Warn("registering xDS metrics", "err", err)
		}
	}
	xdsLn, err := net.Listen("tcp", s.cfg.XDSAddr)
	if err != nil {
		return fmt.Errorf("listening on ECSMESH_XDS_ADDR %s: %w", s.cfg.XDSAddr, err)
	}
	s.mu.Lock()
	s.addrs.XDS = xdsLn.Addr().String()
	s.mu.Unlock()

	adminLn, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listening on ECSMESH_ADMIN_ADDR %s: %w", s.cfg.AdminAddr, err)
	}
	adminSrv := &http.Server{
		Handler: admin.Handler(admin.Options{
			Manager:   mgr,
			Logger:    s.log,
			Token:     s.cfg.AdminToken,
			Metrics:   promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}),
			Ready:     s.checkReady,
			WellKnown: s.tokens.Handler(),
			Inspector: xdsSrv,
			Rotator:   rotator{ca: s.ca, tokens: s.tokens},
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.mu.Lock()
	s.addrs.Admin = adminLn.Addr().String()
	s.mu.Unlock()

	errc := make(chan error, 4)
	var wg sync.WaitGroup
	serve := func(name string, srv *http.Server, ln net.Listener) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", name, err)
			}
		}()
	}
	serve("admin", adminSrv, adminLn)
	s.log.Info("admin API listening", "addr", s.addrs.Admin)
	serve("api", apiSrv, tls.NewListener(apiLn, tlsCfg))
	s.log.Info("sidecar API listening (HTTPS)", "addr", s.addrs.API)
	xdsCtx, stopXDS := context.WithCancel(ctx)
	defer stopXDS()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := xdsSrv.Serve(xdsCtx, xdsLn); err != nil && xdsCtx.Err() == nil {
			errc <- fmt.Errorf("xDS server: %w", err)
		}
	}()
	s.log.Info("ADS listening (gRPC, TLS)", "addr", s.addrs.XDS)
	close(s.ready)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("stopping", "err", runErr)
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
