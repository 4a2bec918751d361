// Package token issues and verifies the JWTs of ecsmesh: dataplane tokens
// (the credential a sidecar presents on its xDS stream, issued by the IAM
// login) and JWT-SVIDs (identity tokens the filter attaches), ES256 with per-mesh keys kept in
// the store and published as a JWKS.
package token

import "time"

// DataplaneClaims are the claims of a dataplane token.
type DataplaneClaims struct {
	// Mesh and Name identify the Dataplane; the xDS node ID is Mesh.Name.
	Mesh string
	Name string
	// SPIFFEID is the dataplane's identity; the token's `sub`.
	SPIFFEID string
	// RoleARN and RoleID are the IAM role the sidecar logged in with.
	RoleARN string
	RoleID  string
	// ProxyType is the role's kuma.io/type (dataplane, ingress, egress);
	// a token acts only as that type.
	ProxyType string
	// IssuedAt and ExpiresAt are set by the issuer.
	IssuedAt  time.Time
	ExpiresAt time.Time
}
