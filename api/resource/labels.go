package resource

// Labels in the ecsmesh.io/ namespace: every one the control plane or the
// sidecar agent reads or writes is defined here and nowhere else. The
// kuma.io/ tags are in meta.go (TagService and friends).
const (
	// LabelOrigin marks who created a Dataplane.
	LabelOrigin = "ecsmesh.io/origin"
	// OriginBootstrap: created by /bootstrap; the xDS server removes it
	// after a grace period once its last stream ends.
	OriginBootstrap = "bootstrap"

	// LabelECSCluster, on a Dataplane, names the ECS cluster of its task
	// (the agent sets it from task metadata); with ECS task verification
	// the CP looks the task up there. Without it, the clusters named by
	// the mesh's OnboardingPolicies are tried, then "default". The label
	// is only a hint: the task must really run there with the caller's
	// role.
	LabelECSCluster = "ecsmesh.io/ecs-cluster"

	// LabelBindOutbounds "true" on a Dataplane gives it a listener on
	// every reachable service's VIP (ecsmesh-dp --bind-outbounds sets it).
	LabelBindOutbounds = "ecsmesh.io/bind-outbounds"
)
