// Package dpserver serves the sidecar API of the control plane beyond the
// IAM login itself: POST /bootstrap (Kuma-shaped: log in, store the
// Dataplane, answer an Envoy bootstrap and a dataplane token) and
// POST /v1/health-sync (the agent reports which inbounds are ready).
package dpserver

// Origin labels.
const (
	// LabelOrigin marks who created a Dataplane.
	LabelOrigin = "ecsmesh.io/origin"
	// OriginBootstrap: created by /bootstrap; the xDS server removes it
	// after a grace period once its stream ends.
	OriginBootstrap = "bootstrap"
)
