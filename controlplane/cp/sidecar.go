package cp

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/dpserver"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// apiHandlers returns the sidecar API routes beyond /.well-known:
// /bootstrap, /v1/auth/aws-iam/login and /v1/health-sync. When the
// sidecar API cannot be assembled (e.g. no AWS configuration), every
// route answers 503 and the reason is logged, so that the rest of the CP
// still serves.
func (s *Server) apiHandlers(verifier *auth.Verifier, verr error) map[string]http.Handler {
	routes, err := s.sidecarRoutes(verifier, verr)
	if err != nil {
		s.log.Error("sidecar API unavailable", "error", err)
		unavailable := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			problem.Write(w, problem.New(http.StatusServiceUnavailable, "sidecar_api_unavailable", "the sidecar API is not available", "see the control plane's log"))
		})
		return map[string]http.Handler{
			"POST " + dpapi.PathBootstrap:  unavailable,
			"POST " + dpapi.PathLogin:      unavailable,
			"POST " + dpapi.PathHealthSync: unavailable,
		}
	}
	return routes
}

// newVerifier builds the IAM login verifier (nil with proxy type none).
// The xDS server uses it too, to re-check the role of every stream.
func (s *Server) newVerifier(ctx context.Context) (*auth.Verifier, error) {
	if s.cfg.Auth.ProxyType == config.AuthNone {
		return nil, nil
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		// IAM is global; a region is only needed to sign and resolve.
		awsCfg.Region = "us-east-1"
	}
	accounts := &auth.Accounts{Config: awsCfg, ReaderRole: s.cfg.Auth.CrossAccountRoleName}
	verifier, err := auth.New(auth.Config{
		Logger:             s.log.With("component", "auth"),
		IAM:                accounts.IAM(),
		ECS:                accounts.ECS(),
		Store:              s.store,
		Tokens:             s.tokens,
		AllowedAccounts:    s.cfg.Auth.AuthorizedAccountIDs,
		ServerID:           s.cfg.Auth.ServerID,
		STSEndpoint:        os.Getenv("AWS_ENDPOINT_URL_STS"),
		VerifyECSTask:      s.cfg.Auth.VerifyECSTask,
		AllowAnyServiceTag: s.cfg.Auth.AllowAnyServiceTag,
		LoginRate:          auth.RateLimit{PerSecond: float64(s.cfg.Auth.LoginsPerSecond), Burst: s.cfg.Auth.LoginBurst},
	})
	if err != nil {
		return nil, err
	}
	s.register("auth", verifier.Collectors())
	return verifier, nil
}

func (s *Server) sidecarRoutes(verifier *auth.Verifier, verr error) (map[string]http.Handler, error) {
	if verr != nil {
		return nil, verr
	}
	var authn dpserver.Authenticator
	if verifier != nil {
		authn = verifier
	}
	dps, err := dpserver.New(dpserver.Config{
		Logger:           s.log.With("component", "dpserver"),
		Store:            s.store,
		Auth:             authn,
		Tokens:           s.tokens,
		ReloadableTokens: s.cfg.Auth.ReloadableTokens,
		XDSPort:          s.xdsPort,
	})
	if err != nil {
		return nil, err
	}
	routes := dps.Handlers()
	if verifier != nil {
		routes["POST "+dpapi.PathLogin] = verifier.LoginHandler()
	} else {
		routes["POST "+dpapi.PathLogin] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			problem.Write(w, problem.New(http.StatusBadRequest, "iam_login_disabled", "IAM login is disabled",
				"KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE is none; use POST /bootstrap"))
		})
	}
	return routes, nil
}

// xdsPort is the port of the ADS server: the bound one once listening,
// else the configured one.
func (s *Server) xdsPort() int {
	addr := s.Addrs().XDS
	if addr == "" {
		addr = s.cfg.XDSAddr
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 5679
	}
	n, err := strconv.Atoi(p)
	if err != nil || n == 0 {
		return 5679
	}
	return n
}
