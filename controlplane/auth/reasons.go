package auth

import (
	"net/http"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// Reason codes of refused logins, by check (numbered as in the package
// doc and docs/reference.md#iam-login-checks). Every refusal carries
// exactly one of them in the problem's "reason" and in the
// ecsmesh_logins_total{reason} metric.
const (
	// Request shape (400/413, before any check).
	ReasonInvalidRequest = "invalid_login_request"
	ReasonBodyTooLarge   = "login_too_large"

	// 1. token size and strict decoding (401).
	ReasonTokenTooLarge  = "login_token_too_large"
	ReasonTokenMalformed = "login_token_malformed"
	// 2. method, scheme, path, query (401).
	ReasonBadMethod = "sts_request_bad_method"
	ReasonBadScheme = "sts_request_bad_scheme"
	ReasonBadPath   = "sts_request_bad_path"
	ReasonHasQuery  = "sts_request_has_query"
	// 3. host and signing region (401).
	ReasonBadAuthorization = "sts_request_bad_authorization"
	ReasonBadRegion        = "sts_request_bad_region"
	ReasonBadHost          = "sts_request_bad_host"
	// 4. body (401).
	ReasonBadBody = "sts_request_bad_body"
	// 5. X-Amz-* headers (401).
	ReasonBadHeader = "sts_request_bad_header"
	// 6. server ID header (401).
	ReasonServerIDMissing   = "server_id_missing"
	ReasonServerIDMismatch  = "server_id_mismatch"
	ReasonServerIDNotSigned = "server_id_not_signed"
	// 7. freshness and single use (401).
	ReasonExpired  = "sts_request_expired"
	ReasonReplayed = "login_replayed"
	// 8. STS answer (401; 503 when STS is unavailable).
	ReasonSTSRejected    = "sts_rejected"
	ReasonSTSBadResponse = "sts_bad_response"
	ReasonSTSUnavailable = "sts_unavailable"
	// 9. caller is an assumed role (401).
	ReasonNotAssumedRole = "not_assumed_role"

	// 10. account allow-list (403).
	ReasonAccountNotAllowed = "account_not_allowed"
	// 11. iam:GetRole (403; 503 when IAM is unavailable).
	ReasonRoleNotFound   = "role_not_found"
	ReasonRoleIDMismatch = "role_id_mismatch"
	ReasonIAMUnavailable = "iam_unavailable"
	// Mesh and Dataplane lookups (after authentication, so that
	// unauthenticated callers learn nothing about them).
	ReasonMeshNotFound      = "mesh_not_found"
	ReasonDataplaneMismatch = "dataplane_mismatch"
	// ReasonDataplaneOwned (409): the name belongs to another IAM role (or,
	// for /bootstrap, to the operator), or — for a login — does not exist.
	// The answer is the same in every case, so it tells a caller nothing
	// about names that are not its own.
	ReasonDataplaneOwned = "dataplane_owned"
	// 12. role tags (403).
	ReasonRoleTypeInvalid  = "role_type_invalid"
	ReasonRoleMeshMismatch = "role_mesh_mismatch"
	ReasonRoleService      = "role_service_mismatch"
	ReasonRoleWorkload     = "role_workload_mismatch"
	// ReasonRoleServiceMissing: a dataplane role must name the services
	// it may serve in kuma.io/service.
	ReasonRoleServiceMissing = "role_service_missing"
	// ReasonRoleLabel: a Dataplane label that decides its identity (read
	// by a MeshIdentity selector or template, or an OnboardingPolicy
	// workloadSelector) is not asserted by a role tag of the same key.
	ReasonRoleLabel = "role_label_not_asserted"
	// ReasonProxyType: the role's proxy type cannot act for this
	// Dataplane (ingress and egress roles cannot run a Dataplane).
	ReasonProxyType = "proxy_type_mismatch"
	// ReasonZoneIngress: the login is for, or the role is tagged, Kuma's
	// zone ingress (kuma.io/type: ingress), which only exists in Kuma's
	// multi-zone deployments; ecsmesh runs one zone and refuses it rather
	// than admitting a proxy it would give no configuration.
	ReasonZoneIngress = "zone_ingress_not_supported"
	// 13. ECS task (403; 503 when ECS is unavailable).
	ReasonECSTaskNotFound   = "ecs_task_not_found"
	ReasonECSTaskNotRunning = "ecs_task_not_running"
	ReasonECSTaskRole       = "ecs_task_role_mismatch"
	ReasonECSUnavailable    = "ecs_unavailable"
	// 14. onboarding policies (403).
	ReasonOnboardingDenied        = "onboarding_denied"
	ReasonOnboardingNeedsECSCheck = "onboarding_requires_ecs_verification"

	// Too many logins from one source address before STS is asked (429).
	ReasonRateLimited = "login_rate_limited"

	// Internal failures (store, token issuer): 500, logged, not explained.
	ReasonInternal = "internal"
)

func unauthenticated(reason, details string) *problem.Problem {
	return problem.New(http.StatusUnauthorized, reason, "IAM login refused", details)
}

func forbidden(reason, details string) *problem.Problem {
	return problem.New(http.StatusForbidden, reason, "IAM login not authorized", details)
}

func unavailable(reason, details string) *problem.Problem {
	return problem.New(http.StatusServiceUnavailable, reason, "a dependency of IAM login is unavailable; retry later", details)
}
