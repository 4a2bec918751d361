package admin

import (
	"fmt"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// pendingKinds are the traffic policy kinds the control plane validates,
// stores and resolves but does not yet turn into Envoy configuration.
// Applying one answers a warning, so nobody mistakes a stored policy for
// an enforced one; a kind leaves this set when its generator lands.
var pendingKinds = map[string]bool{
	resource.KindMeshHTTPRoute: true,
	resource.KindMeshTCPRoute:  true,
}

// notEnforced returns the warning for obj when its kind is pending.
func notEnforced(obj resource.Object) []string {
	m := obj.GetMeta()
	if !pendingKinds[m.Type] {
		return nil
	}
	return []string{fmt.Sprintf("%s %s/%s is stored and validated but not yet applied to proxies: this version generates no Envoy configuration for %s (see docs/policies.md)",
		m.Type, m.Mesh, m.Name, m.Type)}
}
