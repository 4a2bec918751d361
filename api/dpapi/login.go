package dpapi

import "time"

// Paths of the sidecar API, served on the control plane's API port.
const (
	// PathLogin exchanges a signed sts:GetCallerIdentity for a dataplane
	// token.
	PathLogin = "/v1/auth/aws-iam/login"
	// PathBootstrap logs in, stores the Dataplane and answers an Envoy
	// bootstrap with a dataplane token.
	PathBootstrap = "/bootstrap"
	// PathHealthSync reports which inbounds are ready.
	PathHealthSync = "/v1/health-sync"
)

// MaxLoginBody caps the body of POST /v1/auth/aws-iam/login.
const MaxLoginBody = 16 << 10

// LoginRequest is the body of POST /v1/auth/aws-iam/login.
type LoginRequest struct {
	// Mesh and Name identify the Dataplane the token is for.
	Mesh string `json:"mesh"`
	Name string `json:"name"`
	// ProxyType is dataplane (default), ingress or egress; it must match
	// the role's kuma.io/type tag.
	ProxyType string `json:"proxyType"`
	// LoginToken is the signed, unsent sts:GetCallerIdentity request.
	LoginToken string `json:"loginToken"`
}

// LoginResponse answers a successful login.
type LoginResponse struct {
	// Token is the dataplane token (a JWT) and ExpiresAt its expiry.
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}
