// Package xds is the control plane's xDS server (docs/design.md): ADS over gRPC
// (state-of-the-world and delta, go-control-plane) for every dataplane,
// authenticated by its dataplane token, with the dataplane's listeners,
// clusters, endpoints, SDS certificates and ECDS filter configuration;
// dataplane liveness across CP replicas; and the view of a dataplane's
// configuration that `inspect` prints.
package xds

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// Tokens verifies dataplane tokens and issues identity tokens;
// *token.Issuer implements it.
type Tokens interface {
	// VerifyDataplaneToken checks the bearer token of an ADS stream.
	VerifyDataplaneToken(ctx context.Context, raw string) (token.DataplaneClaims, error)
	// IssueJWTSVID signs a dataplane's JWT-SVID for audience (ttl 0: the
	// default).
	IssueJWTSVID(ctx context.Context, mesh string, id spiffeid.ID, audience []string, ttl time.Duration) (string, time.Time, error)
	// MeshJWKS returns the key set that verifies the mesh's JWT-SVIDs only.
	MeshJWKS(ctx context.Context, mesh string) ([]byte, error)
	// JWTSVIDIssuer is the `iss` of the JWT-SVIDs.
	JWTSVIDIssuer() string
}

// CertificateAuthority issues X.509 SVIDs; *ca.Authority implements it.
type CertificateAuthority interface {
	// IssueX509SVID signs a leaf certificate for id in mesh.
	IssueX509SVID(ctx context.Context, mesh string, id spiffeid.ID) (*ca.SVID, error)
	// Bundle returns the mesh's trust bundle.
	Bundle(ctx context.Context, mesh string) (*ca.Bundle, error)
}

// RoleChecker re-checks, while a stream is open, that the IAM role its
// dataplane token was issued to still owns the Dataplane: the role exists
// with the same RoleId and its tags still allow this Dataplane.
// *auth.Verifier implements it.
//
// Recheck returns nil when the role still may hold the stream. An error
// whose Temporary() reports true means IAM could not be asked: the stream
// stays (logged and counted). Any other error closes the stream
// PermissionDenied (reason role_revoked).
type RoleChecker interface {
	Recheck(ctx context.Context, c token.DataplaneClaims, dp *resource.Dataplane) error
}

// Store record kinds the xDS server owns.
const (
	// KindSession records which replica holds a dataplane's ADS stream
	// (Kuma calls it DataplaneInsight).
	KindSession = "DataplaneInsight"
	// KindReplica is a CP replica's heartbeat; a session is live only
	// while its replica's record is.
	KindReplica = "XDSReplica"
)

// Options configure a Server.
type Options struct {
	// Store is the CP's store. Required.
	Store store.Store
	// Tokens verifies stream tokens and issues identity tokens. Required.
	Tokens Tokens
	// CA issues certificates. Required.
	CA CertificateAuthority
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// VIPPort is KUMA_DNS_SERVER_SERVICE_VIP_PORT (default 8080).
	VIPPort int
	// WasmPath and GoPath are where the sidecar image holds the filter
	// (ECSMESH_FILTER_WASM_PATH, ECSMESH_FILTER_GO_PATH; defaults
	// /etc/ecsmesh/ecsmesh-filter.wasm and .so).
	WasmPath, GoPath string
	// AutoReachable is ECSMESH_AUTO_REACHABLE_SERVICES (see
	// generate.Input.AutoReachable).
	AutoReachable bool
	// Domain is KUMA_DNS_SERVER_DOMAIN: services are reachable as
	// <service>.<Domain> plus HostnameGenerator names.
	Domain string
	// InstanceID names this replica in session records (default: random).
	InstanceID string
	// TLS serves ADS over TLS. Required by Serve unless Insecure.
	TLS *tls.Config
	// Insecure serves ADS in plaintext (tests on loopback only).
	Insecure bool
	// ServerOptions are extra gRPC server options.
	ServerOptions []grpc.ServerOption
	// Grace is how long a bootstrap-created Dataplane without a stream
	// survives (default 10 s).
	Grace time.Duration
	// NeverConnectedGrace is how long a bootstrap-created Dataplane that
	// never opened a stream survives (default 2 min).
	NeverConnectedGrace time.Duration
	// SessionTTL is how long a replica's sessions stay live without its
	// heartbeat (default 30 s; heartbeats every third of it).
	SessionTTL time.Duration
	// SyncInterval paces the sweeper, certificate renewal checks and JWKS
	// refresh (default 5 s).
	SyncInterval time.Duration
	// MaxRouteTokens caps the destination-bound JWT-SVIDs one dataplane
	// holds (default 256; see generate.TokenAudiences).
	MaxRouteTokens int
	// RoleChecker re-checks the role of every open stream each
	// RecheckInterval; nil: no re-check (logins without IAM).
	RoleChecker RoleChecker
	// RecheckInterval paces RoleChecker (default and maximum 5 min).
	RecheckInterval time.Duration
}

// MaxRecheckInterval is the default and longest RecheckInterval.
const MaxRecheckInterval = 5 * time.Minute

func (o Options) withDefaults() (Options, error) {
	if o.Store == nil || o.Tokens == nil || o.CA == nil {
		return o, errors.New("xds: Store, Tokens and CA are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.VIPPort == 0 {
		o.VIPPort = 8080
	}
	if o.InstanceID == "" {
		o.InstanceID = randomID()
	}
	if o.Grace == 0 {
		o.Grace = 10 * time.Second
	}
	if o.NeverConnectedGrace == 0 {
		o.NeverConnectedGrace = 2 * time.Minute
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 30 * time.Second
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = 5 * time.Second
	}
	if o.MaxRouteTokens <= 0 {
		o.MaxRouteTokens = defaultMaxRouteTokens
	}
	switch {
	case o.RecheckInterval == 0:
		o.RecheckInterval = MaxRecheckInterval
	case o.RecheckInterval < 0 || o.RecheckInterval > MaxRecheckInterval:
		return o, fmt.Errorf("xds: RecheckInterval %s out of range (0, %s]", o.RecheckInterval, MaxRecheckInterval)
	}
	return o, nil
}
