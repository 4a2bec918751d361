// Package auth is the control plane's IAM workload identity: it
// verifies the signed, unsent sts:GetCallerIdentity request a sidecar sends
// (checks 1–9), authorizes the caller's role (checks 10–14: account
// allow-list, iam:GetRole with the CP's own credentials, kuma.io/* role
// tags, ecs:DescribeTasks, OnboardingPolicies) and issues a dataplane
// token. Every refusal is a *problem.Problem with its own reason code.
//
// Single use: a signature logs in at most once. Once checks 1–7 pass
// locally, the Verifier claims the signature by creating a store record
// (kind LoginSignature, name = sha256 of the signature, expiring at
// X-Amz-Date + 15 min, so every CP replica sharing the store sees it)
// before asking STS. If the login is then refused or fails for any reason,
// the claim is deleted again: a refused attempt stores nothing and does
// not burn a legitimate token (the sidecar may retry it after a 503), while
// two concurrent uses of one signature can never both succeed (the second
// Create fails). Only a successful login keeps the record.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// ServerIDHeader is the header naming the control plane a login is for; it
// must be signed (check 6).
const ServerIDHeader = "X-Ecsmesh-Server-Id"

// KindLoginSignature is the store kind of used-signature records.
const KindLoginSignature = "LoginSignature"

// DefaultSTSTimeout is the timeout of the call to STS.
const DefaultSTSTimeout = 10 * time.Second

// Proxy types a role's kuma.io/type tag may name.
const (
	ProxyTypeDataplane = "dataplane"
	ProxyTypeIngress   = "ingress"
	ProxyTypeEgress    = "egress"
)

// TokenIssuer issues dataplane tokens; *token.Issuer implements it.
type TokenIssuer interface {
	IssueDataplaneToken(ctx context.Context, c token.DataplaneClaims) (string, token.DataplaneClaims, error)
}

// Retry bounds retries of STS, IAM and ECS when they are unavailable.
type Retry struct {
	// Attempts in all (default 3).
	Attempts int
	// Backoff before the second attempt, doubled after each (default
	// 200ms).
	Backoff time.Duration
}

func (r Retry) backoff(attempt int) time.Duration {
	return r.Backoff << (attempt - 1)
}

// Config configures a Verifier.
type Config struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient sends the rebuilt request to STS. nil builds one; in any
	// case redirects are never followed and the timeout is STSTimeout.
	HTTPClient *http.Client
	// STSTimeout defaults to 10 s.
	STSTimeout time.Duration
	// IAM gets roles with the CP's credentials. Required.
	IAM IAM
	// ECS describes tasks; required when VerifyECSTask.
	ECS ECS
	// Store keeps Meshes, Dataplanes, policies and used signatures.
	// Required.
	Store store.Backend
	// Tokens issues the dataplane token. Required.
	Tokens TokenIssuer
	// AllowedAccounts are the accounts that may log in
	// (KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS); empty allows none.
	AllowedAccounts []string
	// ServerID is ECSMESH_AWSIAM_SERVER_ID. Required.
	ServerID string
	// STSEndpoint is AWS_ENDPOINT_URL_STS: when set, its host is also
	// accepted in logins (with its scheme) and every login is sent there.
	STSEndpoint string
	// VerifyECSTask is ECSMESH_AWSIAM_VERIFY_ECS_TASK.
	VerifyECSTask bool
	// RoleCacheTTL is how long GetRole answers are reused; at most (and by
	// default) 5 minutes.
	RoleCacheTTL time.Duration
	// Retry bounds retries when AWS is unavailable.
	Retry Retry
	// AllowAnyServiceTag lets a role tagged kuma.io/service "*" serve any
	// service (ECSMESH_AWSIAM_ALLOW_ANY_SERVICE_TAG; off by default: every
	// dataplane role names its services).
	AllowAnyServiceTag bool
	// LoginRate limits logins per source address before STS is called.
	LoginRate RateLimit
}

// Verifier authenticates and authorizes IAM logins. Safe for concurrent use.
type Verifier struct {
	log           *slog.Logger
	now           func() time.Time
	httpClient    *http.Client
	iam           IAM
	ecs           ECS
	store         store.Backend
	tokens        TokenIssuer
	accounts      map[string]bool
	serverID      string
	stsOverride   *url.URL
	verifyECS     bool
	roles         *roleCache
	retry         Retry
	anyService    bool
	limiter       *limiter
	metrics       *metrics
	hostCache     sync.Map
	hostCacheSize atomic.Int64
}

// New returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	switch {
	case cfg.IAM == nil:
		return nil, errors.New("auth: an IAM client is required")
	case cfg.Store == nil:
		return nil, errors.New("auth: a store is required")
	case cfg.Tokens == nil:
		return nil, errors.New("auth: a token issuer is required")
	case cfg.ServerID == "":
		return nil, errors.New("auth: a server ID (ECSMESH_AWSIAM_SERVER_ID) is required")
	case cfg.VerifyECSTask && cfg.ECS == nil:
		return nil, errors.New("auth: ECSMESH_AWSIAM_VERIFY_ECS_TASK needs an ECS client")
	}
	v := &Verifier{
		log: cfg.Logger, now: cfg.Now, iam: cfg.IAM, ecs: cfg.ECS, store: cfg.Store, tokens: cfg.Tokens,
		accounts: map[string]bool{}, serverID: cfg.ServerID, verifyECS: cfg.VerifyECSTask, retry: cfg.Retry,
		anyService: cfg.AllowAnyServiceTag, metrics: newMetrics(),
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.retry.Attempts <= 0 {
		v.retry.Attempts = 3
	}
	if v.retry.Backoff <= 0 {
		v.retry.Backoff = 200 * time.Millisecond
	}
	for _, a := range cfg.AllowedAccounts {
		v.accounts[a] = true
	}
	if cfg.STSEndpoint != "" {
		u, err := url.Parse(cfg.STSEndpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("auth: STS endpoint %q must be an http(s) URL", cfg.STSEndpoint)
		}
		v.stsOverride = u
	}
	timeout := cfg.STSTimeout
	if timeout <= 0 {
		timeout = DefaultSTSTimeout
	}
	c := &http.Client{}
	if cfg.HTTPClient != nil {
		*c = *cfg.HTTPClient
	}
	c.Timeout = timeout
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Jar = nil
	v.httpClient = c
	v.roles = newRoleCache(cfg.RoleCacheTTL, v.now)
	v.limiter = newLimiter(cfg.LoginRate, v.now)
	return v, nil
}

// LoginRequest is the body of POST /v1/auth/aws-iam/login (and the login
// part of /bootstrap).
type LoginRequest = dpapi.LoginRequest

// Identity is who logged in.
type Identity struct {
	Partition string
	Account   string
	Region    string
	RoleName  string
	RoleARN   string
	RoleID    string
	Session   string
	// ProxyType is the role's kuma.io/type, which the token records.
	ProxyType string
	// Zone and Cluster are set when the ECS task was verified.
	Zone    string
	Cluster string
	// SPIFFEID is the dataplane's identity.
	SPIFFEID string
}

// Result is a successful login.
type Result struct {
	Identity  Identity
	Token     string
	ExpiresAt time.Time
}

// Authenticate runs checks 1–14 in order and issues a dataplane
// token. dp nil means the Dataplane req.Mesh/req.Name must exist in the
// store (/v1/auth/aws-iam/login); otherwise dp is the Dataplane /bootstrap
// carries, which the caller stores only after success. Errors are
// *problem.Problem: 401 for checks 1–9, 403 for 10–14, 503 with
// sts_unavailable, iam_unavailable or ecs_unavailable.
func (v *Verifier) Authenticate(ctx context.Context, req LoginRequest, dp *resource.Dataplane) (res *Result, err error) {
	defer func() { v.metrics.observe(err) }()
	if req.ProxyType == "" {
		req.ProxyType = ProxyTypeDataplane
	}
	if !resource.ValidMeshName(req.Mesh) || req.Name == "" || len(req.Name) > 253 {
		return nil, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "invalid login request", "mesh and name must name a Dataplane")
	}
	switch req.ProxyType {
	case ProxyTypeDataplane, ProxyTypeIngress, ProxyTypeEgress:
	default:
		return nil, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "invalid login request", "proxyType must be dataplane, ingress or egress")
	}
	if dp != nil && (dp.Mesh != req.Mesh || dp.Name != req.Name) {
		return nil, problem.New(http.StatusBadRequest, ReasonDataplaneMismatch, "invalid login request", "the Dataplane's mesh and name differ from the login's")
	}
	// 1. size and strict decoding.
	if len(req.LoginToken) > MaxLoginTokenSize {
		return nil, unauthenticated(ReasonTokenTooLarge, "the login token exceeds 16 KiB")
	}
	tok, derr := DecodeLoginToken(req.LoginToken)
	if derr != nil {
		return nil, unauthenticated(ReasonTokenMalformed, "the login token does not decode")
	}
	// 2–7 (static).
	sl, err := v.checkRequest(ctx, tok)
	if err != nil {
		return nil, err
	}
	// Per-source limit before the signature is claimed and STS is called.
	if ok, wait := v.limiter.allow(SourceIP(ctx)); !ok {
		return nil, rateLimited(wait)
	}
	// 7. single use: claim the signature; release it on any failure.
	rec, cerr := store.CreateRecord(ctx, v.store, store.Record{
		Key:       store.Key{Kind: KindLoginSignature, Name: sl.sigKey},
		Spec:      []byte(fmt.Sprintf(`{"accessKeyId":%q,"date":%q}`, sl.auth.accessKeyID, sl.date.Format(amzTimeFormat))),
		ExpiresAt: sl.date.Add(MaxRequestAge),
	})
	switch {
	case errors.Is(cerr, store.ErrAlreadyExists):
		return nil, unauthenticated(ReasonReplayed, "this signed request was already used; sign a new one")
	case cerr != nil:
		v.log.ErrorContext(ctx, "storing login signature", "error", cerr)
		return nil, problem.Failure(cerr)
	}
	defer func() {
		if err != nil {
			if derr := store.DeleteRecord(context.WithoutCancel(ctx), v.store, rec.Key, rec.Version); derr != nil {
				v.log.ErrorContext(ctx, "releasing login signature", "error", derr)
			}
		}
	}()
	// 8. STS.
	id, err := v.callSTS(ctx, sl)
	if err != nil {
		return nil, err
	}
	// 9. assumed role.
	caller, err := parseAssumedRole(id)
	if err != nil {
		return nil, err
	}
	ident := Identity{Partition: caller.Partition, Account: caller.Account, Region: sl.auth.region,
		RoleName: caller.RoleName, RoleID: caller.RoleID, Session: caller.Session}
	return v.authorize(ctx, req, dp, caller, ident)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func asProblem(err error) *problem.Problem {
	var p *problem.Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

// sleep waits d or until ctx ends.
func (v *Verifier) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
