package resource

import (
	"strings"
)

// Kind names.
const (
	KindMesh                  = "Mesh"
	KindDataplane             = "Dataplane"
	KindMeshIdentity          = "MeshIdentity"
	KindHostnameGenerator     = "HostnameGenerator"
	KindMeshTrafficPermission = "MeshTrafficPermission"
	KindOnboardingPolicy      = "OnboardingPolicy"
	KindMeshTimeout           = "MeshTimeout"
	KindMeshRetry             = "MeshRetry"
	KindMeshCircuitBreaker    = "MeshCircuitBreaker"
	KindMeshHealthCheck       = "MeshHealthCheck"
	KindMeshHTTPRoute         = "MeshHTTPRoute"
	KindMeshTCPRoute          = "MeshTCPRoute"
	KindMeshRateLimit         = "MeshRateLimit"
	KindMeshFaultInjection    = "MeshFaultInjection"
	KindMeshAccessLog         = "MeshAccessLog"
	KindMeshTrace             = "MeshTrace"
	KindMeshMetric            = "MeshMetric"
)

// Scope says whether a kind lives inside a mesh.
type Scope int

// Scopes.
const (
	// ScopeGlobal kinds have no mesh (Mesh itself, HostnameGenerator,
	// OnboardingPolicy when written without one).
	ScopeGlobal Scope = iota + 1
	// ScopeMesh kinds belong to one mesh.
	ScopeMesh
	// ScopeEither kinds may be global or mesh-scoped (OnboardingPolicy).
	ScopeEither
)

// KindInfo describes a kind: its names and how to make an empty one.
type KindInfo struct {
	// Name is the singular, as in `type:` ("Dataplane").
	Name string
	// Plural is the lower-case plural used in API paths ("dataplanes").
	Plural string
	// Scope is where the kind lives.
	Scope Scope
	// New returns an empty resource of the kind.
	New func() Object
}

var kinds = []KindInfo{
	{KindMesh, "meshes", ScopeGlobal, func() Object { return &Mesh{} }},
	{KindDataplane, "dataplanes", ScopeMesh, func() Object { return &Dataplane{} }},
	{KindMeshIdentity, "meshidentities", ScopeMesh, func() Object { return &MeshIdentity{} }},
	{KindHostnameGenerator, "hostnamegenerators", ScopeGlobal, func() Object { return &HostnameGenerator{} }},
	{KindMeshTrafficPermission, "meshtrafficpermissions", ScopeMesh, func() Object { return &MeshTrafficPermission{} }},
	{KindOnboardingPolicy, "onboardingpolicies", ScopeEither, func() Object { return &OnboardingPolicy{} }},
	{KindMeshTimeout, "meshtimeouts", ScopeMesh, func() Object { return &MeshTimeout{} }},
	{KindMeshRetry, "meshretries", ScopeMesh, func() Object { return &MeshRetry{} }},
	{KindMeshCircuitBreaker, "meshcircuitbreakers", ScopeMesh, func() Object { return &MeshCircuitBreaker{} }},
	{KindMeshHealthCheck, "meshhealthchecks", ScopeMesh, func() Object { return &MeshHealthCheck{} }},
	{KindMeshHTTPRoute, "meshhttproutes", ScopeMesh, func() Object { return &MeshHTTPRoute{} }},
	{KindMeshTCPRoute, "meshtcproutes", ScopeMesh, func() Object { return &MeshTCPRoute{} }},
	{KindMeshRateLimit, "meshratelimits", ScopeMesh, func() Object { return &MeshRateLimit{} }},
	{KindMeshFaultInjection, "meshfaultinjections", ScopeMesh, func() Object { return &MeshFaultInjection{} }},
	{KindMeshAccessLog, "meshaccesslogs", ScopeMesh, func() Object { return &MeshAccessLog{} }},
	{KindMeshTrace, "meshtraces", ScopeMesh, func() Object { return &MeshTrace{} }},
	{KindMeshMetric, "meshmetrics", ScopeMesh, func() Object { return &MeshMetric{} }},
}

// Kinds lists every kind, in a stable order.
func Kinds() []KindInfo { return append([]KindInfo(nil), kinds...) }

// LookupKind finds a kind by singular or plural name, case-insensitively
// ("dataplane", "Dataplanes", "meshtrafficpermission").
func LookupKind(name string) (KindInfo, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, k := range kinds {
		if n == strings.ToLower(k.Name) || n == k.Plural {
			return k, true
		}
	}
	return KindInfo{}, false
}

// KindNames lists the singular names, for error messages.
func KindNames() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.Name
	}
	return out
}
