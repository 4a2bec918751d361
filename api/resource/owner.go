package resource

// Proxy types: what an IAM role's kuma.io/type tag says its tasks may run,
// recorded on the Dataplane it owns and in its dataplane token.
const (
	ProxyTypeDataplane = "dataplane"
	ProxyTypeIngress   = "ingress"
	ProxyTypeEgress    = "egress"
)

// Owner is whom a Dataplane belongs to: the IAM role that created it
// through /bootstrap, and the identity and proxy type it was admitted
// with. The control plane sets it; it is never read from input (apply and
// /bootstrap clear it), so a Dataplane without one was applied by an
// operator.
type Owner struct {
	// RoleARN and RoleID are the owning IAM role; RoleID tells a
	// re-created role of the same name apart.
	RoleARN string `json:"roleArn"`
	RoleID  string `json:"roleId"`
	// SPIFFEID is the identity the Dataplane was admitted with.
	SPIFFEID string `json:"spiffeId"`
	// ProxyType is the role's kuma.io/type.
	ProxyType string `json:"proxyType"`
}

// OwnedBy reports whether the Dataplane belongs to the role with this
// RoleId. An operator-applied Dataplane belongs to no role.
func (d *Dataplane) OwnedBy(roleID string) bool {
	return d.Owner != nil && roleID != "" && d.Owner.RoleID == roleID
}

// ProxyType is the proxy type of the Dataplane: its owner's, and
// "dataplane" for one an operator applied.
func (d *Dataplane) ProxyType() string {
	if d.Owner != nil && d.Owner.ProxyType != "" {
		return d.Owner.ProxyType
	}
	return ProxyTypeDataplane
}
