package dpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/internal/strictjson"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// Reason codes of this package's problems.
const (
	ReasonInvalidRequest   = "invalid_bootstrap_request"
	ReasonInvalidDataplane = "invalid_dataplane"
	ReasonBodyTooLarge     = "body_too_large"
	ReasonUnauthenticated  = "dataplane_token_invalid"
	ReasonForbidden        = "dataplane_token_mismatch"
	ReasonMeshNotFound     = "mesh_not_found"
	ReasonNotFound         = "dataplane_not_found"
	ReasonInternal         = "internal"
)

// Authenticator runs the IAM login; *auth.Verifier implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, req auth.LoginRequest, dp *resource.Dataplane) (*auth.Result, error)
}

// Tokens issues and verifies dataplane tokens; *token.Issuer implements it.
type Tokens interface {
	IssueDataplaneToken(ctx context.Context, c token.DataplaneClaims) (string, token.DataplaneClaims, error)
	VerifyDataplaneToken(ctx context.Context, raw string) (token.DataplaneClaims, error)
}

// Config configures a Server.
type Config struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Store keeps Meshes, MeshIdentities and Dataplanes. Required.
	Store store.Store
	// Auth is the IAM login; nil means no authentication (proxy type
	// none, local development only).
	Auth Authenticator
	// Tokens issues tokens without login (Auth nil) and verifies the
	// token of /v1/health-sync. Required.
	Tokens Tokens
	// ReloadableTokens is KUMA_DP_SERVER_AUTHN_ENABLE_RELOADABLE_TOKENS.
	ReloadableTokens bool
	// XDSPort returns the port of the ADS server. Required.
	XDSPort func() int
}

// Server serves /bootstrap and /v1/health-sync.
type Server struct {
	cfg Config
	log *slog.Logger
	// metricPolicies caches each mesh's decoded MeshMetric policies by
	// the keys and versions of their records (health syncs run every
	// second per Dataplane).
	metricPolicies metricCache
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("dpserver: a store is required")
	case cfg.Tokens == nil:
		return nil, errors.New("dpserver: a token issuer is required")
	case cfg.XDSPort == nil:
		return nil, errors.New("dpserver: the xDS port is required")
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Handlers returns the routes, for an http.ServeMux.
func (s *Server) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"POST " + dpapi.PathBootstrap:  http.HandlerFunc(s.bootstrap),
		"POST " + dpapi.PathHealthSync: http.HandlerFunc(s.healthSync),
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return problem.Newf(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "request too large", "the body is capped at %d bytes", limit)
	}
	if err != nil {
		return problem.New(http.StatusBadRequest, ReasonInvalidRequest, "invalid request", "cannot read the body")
	}
	// Keys must be exactly the fields' names: encoding/json alone would
	// match "NAME" to name and let the last of two equal keys win.
	if err := strictjson.Unmarshal(body, v); err != nil {
		return problem.New(http.StatusBadRequest, ReasonInvalidRequest, "invalid request", "the body must be one JSON object with the documented keys: "+err.Error())
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) bootstrap(w http.ResponseWriter, r *http.Request) {
	var req dpapi.BootstrapRequest
	if err := readJSON(w, r, dpapi.MaxBootstrapBody, &req); err != nil {
		problem.Write(w, err)
		return
	}
	resp, err := s.Bootstrap(auth.WithSourceIP(r.Context(), auth.RemoteIP(r)), req, r.Host)
	if err != nil {
		problem.Write(w, err)
		return
	}
	writeJSON(w, resp)
}

// Bootstrap logs the agent in, stores its Dataplane (created with the
// origin label, or updated) and returns the Envoy bootstrap. requestHost
// is the Host the request was sent to.
func (s *Server) Bootstrap(ctx context.Context, req dpapi.BootstrapRequest, requestHost string) (*dpapi.BootstrapResponse, error) {
	dp, err := decodeDataplane(req.DataplaneResource)
	if err != nil {
		return nil, err
	}
	if req.Mesh == "" {
		req.Mesh = dp.Mesh
	}
	if req.Name == "" {
		req.Name = dp.Name
	}
	if req.Mesh != dp.Mesh || req.Name != dp.Name {
		return nil, problem.Newf(http.StatusBadRequest, ReasonInvalidRequest, "invalid bootstrap request",
			"the request is for %s/%s but dataplaneResource is %s/%s", req.Mesh, req.Name, dp.Mesh, dp.Name)
	}
	var tok string
	var exp time.Time
	var spiffe string
	var owner *resource.Owner
	if s.cfg.Auth != nil {
		res, err := s.cfg.Auth.Authenticate(ctx, auth.LoginRequest{Mesh: req.Mesh, Name: req.Name, ProxyType: req.ProxyType, LoginToken: req.LoginToken}, dp)
		if err != nil {
			return nil, err
		}
		tok, exp, spiffe = res.Token, res.ExpiresAt, res.Identity.SPIFFEID
		owner = &resource.Owner{RoleARN: res.Identity.RoleARN, RoleID: res.Identity.RoleID, SPIFFEID: spiffe, ProxyType: res.Identity.ProxyType}
	} else {
		tok, exp, spiffe, err = s.issueUnauthenticated(ctx, dp)
		if err != nil {
			return nil, err
		}
	}
	if err := s.storeDataplane(ctx, dp, owner); err != nil {
		return nil, err
	}
	host := req.Host
	if host == "" {
		host = requestHost
		if h, _, err := net.SplitHostPort(requestHost); err == nil {
			host = h
		}
	}
	params := envoybootstrap.Params{
		Mesh: dp.Mesh, Name: dp.Name, XDSHost: host, XDSPort: s.cfg.XDSPort(),
		CACertFile: req.CACertPath, AdminPort: req.AdminPort,
	}
	if svcs := dp.Services(); len(svcs) > 0 {
		params.Service = svcs[0]
	}
	if dp.Networking.Admin != nil && dp.Networking.Admin.Port != 0 {
		params.AdminPort = dp.Networking.Admin.Port
	}
	if req.BindOutbounds {
		params.Metadata = map[string]string{envoybootstrap.MetaBindOutbounds: "true"}
	}
	reloadable := s.cfg.ReloadableTokens && req.TokenPath != ""
	if reloadable {
		params.TokenFile = req.TokenPath
	} else {
		params.Token = tok
	}
	b, err := envoybootstrap.Build(params)
	if err != nil {
		return nil, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "cannot build the Envoy bootstrap", err.Error())
	}
	js, err := protojson.Marshal(b)
	if err != nil {
		return nil, s.internal(ctx, "marshalling bootstrap", err)
	}
	s.log.InfoContext(ctx, "dataplane bootstrapped", "mesh", dp.Mesh, "name", dp.Name, "spiffeId", spiffe, "reloadableTokens", reloadable,
		"agentVersion", req.Version.EcsmeshDP.Version, "envoyVersion", req.Version.Envoy.Version, "taskArn", req.TaskARN, "az", req.AvailabilityZone)
	return &dpapi.BootstrapResponse{
		Bootstrap: json.RawMessage(js), Token: tok, ExpiresAt: exp, ReloadableTokens: reloadable,
		Mesh: dp.Mesh, Name: dp.Name, SPIFFEID: spiffe, XDSAddress: net.JoinHostPort(host, fmt.Sprint(params.XDSPort)),
	}, nil
}

func decodeDataplane(text string) (*resource.Dataplane, error) {
	if strings.TrimSpace(text) == "" {
		return nil, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "invalid bootstrap request", "dataplaneResource is empty")
	}
	obj, _, err := resource.DecodeOne([]byte(text))
	if err != nil {
		p := problem.From(err)
		if p.Status == http.StatusInternalServerError {
			p = problem.New(http.StatusBadRequest, ReasonInvalidDataplane, "invalid dataplaneResource", err.Error())
		}
		p.Reason, p.Title = ReasonInvalidDataplane, "invalid dataplaneResource"
		return nil, p
	}
	dp, ok := obj.(*resource.Dataplane)
	if !ok {
		return nil, problem.Newf(http.StatusBadRequest, ReasonInvalidDataplane, "invalid dataplaneResource", "dataplaneResource is a %s, not a Dataplane", obj.GetMeta().Type)
	}
	return dp, nil
}

// issueUnauthenticated issues a token without login (proxy type none).
func (s *Server) issueUnauthenticated(ctx context.Context, dp *resource.Dataplane) (string, time.Time, string, error) {
	rec, err := s.cfg.Store.Get(ctx, store.Key{Kind: resource.KindMesh, Name: dp.Mesh})
	if errors.Is(err, store.ErrNotFound) {
		return "", time.Time{}, "", problem.Newf(http.StatusNotFound, ReasonMeshNotFound, "mesh not found", "mesh %s does not exist; apply it first", dp.Mesh)
	}
	if err != nil {
		return "", time.Time{}, "", s.internal(ctx, "reading mesh", err)
	}
	obj, err := resource.Unmarshal(resource.KindMesh, rec.Spec)
	if err != nil {
		return "", time.Time{}, "", s.internal(ctx, "decoding mesh", err)
	}
	recs, err := s.cfg.Store.List(ctx, resource.KindMeshIdentity, store.ListOptions{Mesh: dp.Mesh})
	if err != nil {
		return "", time.Time{}, "", s.internal(ctx, "listing mesh identities", err)
	}
	var ids []*resource.MeshIdentity
	for _, r := range recs {
		o, err := resource.Unmarshal(resource.KindMeshIdentity, r.Spec)
		if err != nil {
			return "", time.Time{}, "", s.internal(ctx, "decoding mesh identity", err)
		}
		ids = append(ids, o.(*resource.MeshIdentity))
	}
	id, err := resource.SPIFFEID(obj.(*resource.Mesh), resource.SelectIdentity(ids, dp), dp)
	if err != nil {
		return "", time.Time{}, "", problem.New(http.StatusBadRequest, ReasonInvalidDataplane, "the dataplane's SPIFFE ID cannot be computed", err.Error())
	}
	tok, claims, err := s.cfg.Tokens.IssueDataplaneToken(ctx, token.DataplaneClaims{Mesh: dp.Mesh, Name: dp.Name, SPIFFEID: id.String()})
	if err != nil {
		return "", time.Time{}, "", s.internal(ctx, "issuing dataplane token", err)
	}
	return tok, claims.ExpiresAt, id.String(), nil
}

// storeDataplane creates dp with the bootstrap origin label and owner, or
// replaces the stored one the same owner holds, keeping its origin.
// Ownership is checked again here, against the version written, so two
// roles racing for one name cannot both win: the login's check ran before
// STS answered. owner nil (no authentication, local development) keeps
// whatever owner is stored. Optimistic: retried on conflicts.
func (s *Server) storeDataplane(ctx context.Context, dp *resource.Dataplane, owner *resource.Owner) error {
	key := store.Key{Kind: resource.KindDataplane, Mesh: dp.Mesh, Name: dp.Name}
	for attempt := 0; attempt < 10; attempt++ {
		cur, err := s.cfg.Store.Get(ctx, key)
		mode, version := store.Create, int64(0)
		labels := map[string]string{}
		for k, v := range dp.Labels {
			labels[k] = v
		}
		next := *dp
		next.Owner = owner
		switch {
		case errors.Is(err, store.ErrNotFound):
			labels[resource.LabelOrigin] = resource.OriginBootstrap
		case err != nil:
			return s.internal(ctx, "reading dataplane", err)
		default:
			mode, version = store.Update, cur.Version
			obj, err := resource.Unmarshal(resource.KindDataplane, cur.Spec)
			if err != nil {
				return s.internal(ctx, "decoding stored dataplane", err)
			}
			old := obj.(*resource.Dataplane)
			if owner != nil && !auth.MayUse(old, owner.RoleID, true) {
				return auth.NotOwned(dp.Mesh, dp.Name)
			}
			if owner == nil {
				next.Owner = old.Owner
			}
			if o, ok := old.Labels[resource.LabelOrigin]; ok {
				labels[resource.LabelOrigin] = o
			} else {
				delete(labels, resource.LabelOrigin)
			}
		}
		next.Labels = labels
		next.CreationTime, next.ModificationTime = nil, nil
		spec, err := resource.Marshal(&next)
		if err != nil {
			return s.internal(ctx, "encoding dataplane", err)
		}
		_, err = s.cfg.Store.Batch(ctx, []store.Write{{Mode: mode, Record: store.Record{Key: key, Version: version, Spec: spec}}})
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return s.internal(ctx, "storing dataplane", err)
		}
		dp.Labels = labels
		return nil
	}
	return problem.New(http.StatusConflict, "conflict", "the Dataplane keeps changing", "retry")
}

func (s *Server) internal(ctx context.Context, doing string, err error) error {
	s.log.ErrorContext(ctx, "dpserver: "+doing, "error", err)
	return problem.Failure(err)
}
