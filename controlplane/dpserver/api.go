// Package dpserver serves the sidecar API of the control plane beyond the
// IAM login itself: POST /bootstrap (Kuma-shaped: log in, store the
// Dataplane, answer an Envoy bootstrap and a dataplane token) and
// POST /v1/health-sync (the agent reports which inbounds are ready).
package dpserver
