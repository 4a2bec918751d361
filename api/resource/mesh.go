package resource

import (
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Defaults and allowed values of a Mesh.
const (
	DefaultCertTTL          = time.Hour
	DefaultRotateAt         = 0.5
	DefaultTrustDomain      = "{{ .Mesh }}.mesh.local"
	DefaultTokenTTL         = time.Hour
	PermissionAllowMesh     = "AllowMesh"
	PermissionDeny          = "Deny"
	FilterTypeWasm          = "Wasm"
	FilterTypeGo            = "Go"
	minCertTTL, maxCertTTL  = time.Minute, 30 * 24 * time.Hour
	minTokenTTL, maxTokenTT = time.Minute, 24 * time.Hour
)

// Mesh is a mesh: a trust domain, its CA settings and default permission.
// `type: Mesh` and `name: default` alone is a complete Mesh.
type Mesh struct {
	Meta
	// MTLS holds the CA settings; mTLS is always on.
	MTLS *MeshMTLS `json:"mtls,omitempty"`
	// Tokens holds the dataplane token settings.
	Tokens *MeshTokens `json:"tokens,omitempty"`
	// DefaultPermission applies when no MeshTrafficPermission targets a
	// service: AllowMesh (callers of this trust domain) or Deny.
	DefaultPermission string `json:"defaultPermission,omitempty"`
	// Filter chooses the form of the data-plane filter Envoy loads: Wasm
	// (default, envoy.filters.http.wasm) or Go (envoy.filters.http.golang,
	// needs the envoy-contrib image). An ecsmesh extension.
	Filter *MeshFilter `json:"filter,omitempty"`
}

// MeshMTLS are the CA settings of a mesh.
type MeshMTLS struct {
	// CertTTL is the lifetime of leaf certificates (default 1h).
	CertTTL *Duration `json:"certTTL,omitempty"`
	// RotateAt is the fraction of a certificate's life after which it is
	// renewed (default 0.5).
	RotateAt *float64 `json:"rotateAt,omitempty"`
	// TrustDomain is a template over .Mesh (default "{{ .Mesh }}.mesh.local").
	TrustDomain string `json:"trustDomain,omitempty"`
}

// MeshTokens are the dataplane token settings.
type MeshTokens struct {
	// TTL is the lifetime of a dataplane token (default 1h).
	TTL *Duration `json:"ttl,omitempty"`
}

// MeshFilter chooses the filter form.
type MeshFilter struct {
	// Type is Wasm or Go.
	Type string `json:"type,omitempty"`
}

// CertTTL returns the leaf certificate lifetime, defaulted.
func (m *Mesh) CertTTL() time.Duration {
	if m.MTLS != nil && m.MTLS.CertTTL != nil {
		return m.MTLS.CertTTL.Duration
	}
	return DefaultCertTTL
}

// RotateAt returns the renewal fraction, defaulted.
func (m *Mesh) RotateAt() float64 {
	if m.MTLS != nil && m.MTLS.RotateAt != nil {
		return *m.MTLS.RotateAt
	}
	return DefaultRotateAt
}

// TokenTTL returns the dataplane token lifetime, defaulted.
func (m *Mesh) TokenTTL() time.Duration {
	if m.Tokens != nil && m.Tokens.TTL != nil {
		return m.Tokens.TTL.Duration
	}
	return DefaultTokenTTL
}

// Permission returns the default permission, defaulted.
func (m *Mesh) Permission() string {
	if m.DefaultPermission == "" {
		return PermissionAllowMesh
	}
	return m.DefaultPermission
}

// FilterType returns Wasm or Go, defaulted.
func (m *Mesh) FilterType() string {
	if m.Filter == nil || m.Filter.Type == "" {
		return FilterTypeWasm
	}
	return m.Filter.Type
}

// TrustDomain renders the mesh's trust domain template.
func (m *Mesh) TrustDomain() (string, error) {
	tmpl := DefaultTrustDomain
	if m.MTLS != nil && m.MTLS.TrustDomain != "" {
		tmpl = m.MTLS.TrustDomain
	}
	return renderTrustDomain(tmpl, identityData{Mesh: m.Name})
}

// Validate implements Object.
func (m *Mesh) Validate() *validation.Error {
	verr := &validation.Error{}
	validateMeta(&m.Meta, ScopeGlobal, verr)
	if m.Name != "" && !ValidMeshName(m.Name) {
		verr.Add(validation.Root().Field("name"), "must be a DNS label: lowercase letters, digits and '-', at most 63 characters (it becomes part of the trust domain)")
	}
	if m.Mesh != "" {
		verr.Add(validation.Root().Field("mesh"), "must not be set on a Mesh")
	}
	p := validation.Root().Field("mtls")
	if m.MTLS != nil {
		if d := m.MTLS.CertTTL; d != nil && (d.Duration < minCertTTL || d.Duration > maxCertTTL) {
			verr.Add(p.Field("certTTL"), fmt.Sprintf("must be between %s and %s", minCertTTL, maxCertTTL))
		}
		if r := m.MTLS.RotateAt; r != nil && (*r <= 0 || *r >= 1) {
			verr.Add(p.Field("rotateAt"), "must be a fraction of the certificate's life strictly between 0 and 1, e.g. 0.5")
		}
		if m.MTLS.TrustDomain != "" && ValidMeshName(m.Name) {
			if _, err := m.TrustDomain(); err != nil {
				verr.Add(p.Field("trustDomain"), err.Error())
			}
		}
	}
	if m.Tokens != nil && m.Tokens.TTL != nil {
		if d := m.Tokens.TTL.Duration; d < minTokenTTL || d > maxTokenTT {
			verr.Add(validation.Root().Field("tokens").Field("ttl"), fmt.Sprintf("must be between %s and %s", minTokenTTL, maxTokenTT))
		}
	}
	switch m.DefaultPermission {
	case "", PermissionAllowMesh, PermissionDeny:
	default:
		verr.Add(validation.Root().Field("defaultPermission"), "must be AllowMesh or Deny")
	}
	if m.Filter != nil {
		switch m.Filter.Type {
		case "", FilterTypeWasm, FilterTypeGo:
		default:
			verr.Add(validation.Root().Field("filter").Field("type"), "must be Wasm or Go")
		}
	}
	return verr
}
