// Package dashboards holds Grafana dashboards for ecsmesh, as JSON that
// Grafana imports (Dashboards → Import): the control plane's
// (ecsmesh-control-plane.json). Every metric a panel queries is one the
// code registers; a test checks it.
package dashboards

import "embed"

// FS holds the dashboards, one JSON file each.
//
//go:embed *.json
var FS embed.FS
