package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// authorize runs checks 10–14 and issues the token.
func (v *Verifier) authorize(ctx context.Context, req LoginRequest, dp *resource.Dataplane, caller assumedRole, ident Identity) (*Result, error) {
	// 10. account allow-list.
	if !v.accounts[caller.Account] {
		return nil, forbidden(ReasonAccountNotAllowed, "AWS account "+caller.Account+" is not in KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS")
	}
	// 11. iam:GetRole with the CP's credentials.
	role, hit, err := v.getRole(ctx, caller.Account, caller.RoleName)
	if err != nil {
		return nil, err
	}
	if hit && !constantTimeEqual(role.RoleID, caller.RoleID) {
		// The cached role may predate a re-creation: ask IAM once more.
		v.roles.forget(roleKey{caller.Account, caller.RoleName})
		if role, _, err = v.getRole(ctx, caller.Account, caller.RoleName); err != nil {
			return nil, err
		}
	}
	if !constantTimeEqual(role.RoleID, caller.RoleID) {
		return nil, forbidden(ReasonRoleIDMismatch, "IAM role "+caller.RoleName+" was re-created since these credentials were issued")
	}
	ident.RoleARN = role.ARN
	// Mesh and Dataplane, now that the caller is known.
	mesh, identities, err := v.meshState(ctx, req.Mesh)
	if err != nil {
		return nil, err
	}
	bootstrap := dp != nil
	stored, err := v.storedDataplane(ctx, req.Mesh, req.Name)
	if err != nil {
		return nil, err
	}
	if !MayUse(stored, role.RoleID, bootstrap) {
		return nil, NotOwned(req.Mesh, req.Name)
	}
	if !bootstrap {
		dp = stored
	}
	// Zone ingress belongs to multi-zone, which ecsmesh does not run.
	if req.ProxyType == resource.ProxyTypeIngress || role.Tags[resource.TagType] == resource.ProxyTypeIngress {
		return nil, forbidden(ReasonZoneIngress, fmt.Sprintf("IAM role %s: kuma.io/type ingress is a zone ingress of a multi-zone deployment, which ecsmesh does not support (one zone per control plane); run sidecars with roles tagged kuma.io/type dataplane", role.ARN))
	}
	// Proxy types: a Dataplane is run by a dataplane role, and a login for
	// a stored one acts as the type it was admitted with.
	if req.ProxyType != resource.ProxyTypeDataplane || dp.ProxyType() != req.ProxyType {
		return nil, forbidden(ReasonProxyType, fmt.Sprintf("IAM role %s is kuma.io/type %s; Dataplane %s/%s runs as %s (ingress and egress roles cannot run a Dataplane)",
			role.ARN, req.ProxyType, req.Mesh, req.Name, dp.ProxyType()))
	}
	ident.ProxyType = req.ProxyType
	mi := resource.SelectIdentity(identities, dp)
	pols, err := v.policies(ctx, req.Mesh)
	if err != nil {
		return nil, err
	}
	// 12. tags.
	if err := checkTags(role, req, dp, v.anyService); err != nil {
		return nil, err
	}
	if err := checkLabels(role, dp, identityLabelKeys(identities, mi, pols)); err != nil {
		return nil, err
	}
	// 13. ECS task.
	if v.verifyECS {
		task, err := v.verifyTask(ctx, caller, ident.Region, role, dp, req.Mesh)
		if err != nil {
			return nil, err
		}
		ident.Zone, ident.Cluster = task.AvailabilityZone, task.ClusterARN
	}
	// 14. onboarding policies.
	if err := v.checkOnboarding(req.Mesh, pols, ident, dp); err != nil {
		return nil, err
	}
	id, err := resource.SPIFFEID(mesh, mi, dp)
	if err != nil {
		return nil, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "the dataplane's SPIFFE ID cannot be computed", err.Error())
	}
	ident.SPIFFEID = id.String()
	raw, claims, err := v.tokens.IssueDataplaneToken(ctx, token.DataplaneClaims{
		Mesh: req.Mesh, Name: req.Name, SPIFFEID: ident.SPIFFEID, RoleARN: role.ARN, RoleID: role.RoleID, ProxyType: ident.ProxyType,
	})
	if err != nil {
		v.log.ErrorContext(ctx, "issuing dataplane token", "mesh", req.Mesh, "name", req.Name, "error", err)
		return nil, problem.Failure(err)
	}
	v.log.InfoContext(ctx, "IAM login", "mesh", req.Mesh, "name", req.Name, "role", role.ARN, "session", caller.Session, "spiffeId", ident.SPIFFEID)
	return &Result{Identity: ident, Token: raw, ExpiresAt: claims.ExpiresAt}, nil
}

// getRole calls IAM through the cache, with bounded retries.
func (v *Verifier) getRole(ctx context.Context, account, name string) (Role, bool, error) {
	role, hit, err := v.roles.get(ctx, roleKey{account, name}, func(ctx context.Context) (Role, error) {
		return retryAWS(ctx, v, func(ctx context.Context) (Role, error) { return v.iam.GetRole(ctx, account, name) })
	})
	v.metrics.roleCache(hit)
	switch {
	case err == nil:
		return role, hit, nil
	case errors.Is(err, ErrNotFound):
		return Role{}, false, forbidden(ReasonRoleNotFound, "IAM role "+name+" does not exist in account "+account)
	default:
		v.log.WarnContext(ctx, "iam:GetRole failed", "role", name, "account", account, "error", err)
		return Role{}, false, unavailable(ReasonIAMUnavailable, "iam:GetRole failed; retry later")
	}
}

// retryAWS calls fn until it succeeds, fails with an error that is not
// ErrUnavailable, or Retry.Attempts are spent.
func retryAWS[T any](ctx context.Context, v *Verifier, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	var err error
	for attempt := 0; attempt < v.retry.Attempts; attempt++ {
		if attempt > 0 {
			if serr := v.sleep(ctx, v.retry.backoff(attempt)); serr != nil {
				return zero, fmt.Errorf("%w: %w", ErrUnavailable, serr)
			}
		}
		var out T
		out, err = fn(ctx)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			return out, err
		}
	}
	return zero, err
}

func (v *Verifier) meshState(ctx context.Context, name string) (*resource.Mesh, []*resource.MeshIdentity, error) {
	rec, err := v.store.Get(ctx, store.Key{Kind: resource.KindMesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, problem.New(http.StatusNotFound, ReasonMeshNotFound, "IAM login not possible", "mesh "+name+" does not exist")
	}
	if err != nil {
		return nil, nil, v.internal(ctx, "reading mesh", err)
	}
	obj, err := resource.Unmarshal(resource.KindMesh, rec.Spec)
	if err != nil {
		return nil, nil, v.internal(ctx, "decoding mesh", err)
	}
	recs, err := v.store.List(ctx, resource.KindMeshIdentity, store.ListOptions{Mesh: name})
	if err != nil {
		return nil, nil, v.internal(ctx, "listing mesh identities", err)
	}
	var ids []*resource.MeshIdentity
	for _, r := range recs {
		o, err := resource.Unmarshal(resource.KindMeshIdentity, r.Spec)
		if err != nil {
			return nil, nil, v.internal(ctx, "decoding mesh identity", err)
		}
		ids = append(ids, o.(*resource.MeshIdentity))
	}
	return obj.(*resource.Mesh), ids, nil
}

// storedDataplane returns the stored Dataplane, or nil when there is none.
func (v *Verifier) storedDataplane(ctx context.Context, mesh, name string) (*resource.Dataplane, error) {
	rec, err := v.store.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, v.internal(ctx, "reading dataplane", err)
	}
	obj, err := resource.Unmarshal(resource.KindDataplane, rec.Spec)
	if err != nil {
		return nil, v.internal(ctx, "decoding dataplane", err)
	}
	return obj.(*resource.Dataplane), nil
}

func (v *Verifier) internal(ctx context.Context, doing string, err error) *problem.Problem {
	v.log.ErrorContext(ctx, "IAM login: "+doing, "error", err)
	return problem.Failure(err)
}

// checkTags runs check 12 for the type, mesh, service and workload tags.
func checkTags(role Role, req LoginRequest, dp *resource.Dataplane, anyService bool) error {
	typ, ok := role.Tags[resource.TagType]
	if !ok {
		return forbidden(ReasonRoleTypeInvalid, "IAM role "+role.ARN+" lacks tag kuma.io/type")
	}
	if typ != req.ProxyType {
		return forbidden(ReasonRoleTypeInvalid, fmt.Sprintf("IAM role %s has kuma.io/type %q, the login is for %q", role.ARN, typ, req.ProxyType))
	}
	mesh, ok := role.Tags[resource.TagMesh]
	if !ok {
		return forbidden(ReasonRoleMeshMismatch, "IAM role "+role.ARN+" lacks tag kuma.io/mesh")
	}
	if mesh != req.Mesh {
		return forbidden(ReasonRoleMeshMismatch, fmt.Sprintf("IAM role %s may join mesh %q, not %q", role.ARN, mesh, req.Mesh))
	}
	svcTag, hasSvc := role.Tags[resource.TagService]
	if !hasSvc || strings.TrimSpace(svcTag) == "" {
		return forbidden(ReasonRoleServiceMissing, "IAM role "+role.ARN+" lacks tag kuma.io/service; tag it with the service(s) its tasks serve, comma-separated")
	}
	allowed := serviceSet(svcTag)
	if allowed["*"] && !anyService {
		return forbidden(ReasonRoleService, "IAM role "+role.ARN+" has kuma.io/service \"*\", which is refused unless ECSMESH_AWSIAM_ALLOW_ANY_SERVICE_TAG=true")
	}
	for _, s := range dp.Services() {
		if !allowed[s] && !allowed["*"] {
			return forbidden(ReasonRoleService, fmt.Sprintf("IAM role %s may serve %q, not %q", role.ARN, svcTag, s))
		}
	}
	// The workload is checked whatever identity applies: other things
	// (selectors, policies, logs) read it too.
	wl, hasWl := role.Tags[resource.TagWorkload]
	label, hasLabel := dp.Labels[resource.TagWorkload]
	switch {
	case hasWl && wl != dp.Workload():
		return forbidden(ReasonRoleWorkload, fmt.Sprintf("IAM role %s is workload %q, the Dataplane claims %q", role.ARN, wl, dp.Workload()))
	case !hasWl && hasLabel:
		return forbidden(ReasonRoleWorkload, fmt.Sprintf("IAM role %s lacks tag kuma.io/workload, the Dataplane claims workload %q", role.ARN, label))
	}
	return nil
}

func serviceSet(tag string) map[string]bool {
	out := map[string]bool{}
	for _, s := range strings.Split(tag, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out[s] = true
		}
	}
	return out
}

// identityLabelKeys lists the Dataplane label keys that decide its
// identity or admission: every MeshIdentity selector of the mesh (a label
// can move a Dataplane from one identity to another), the label calls of
// the identity that applies, and the workloadSelectors of the mesh's
// OnboardingPolicies.
func identityLabelKeys(ids []*resource.MeshIdentity, applied *resource.MeshIdentity, pols []*resource.OnboardingPolicy) []string {
	keys := map[string]bool{}
	for _, mi := range ids {
		if sel := mi.Spec.Selector.Dataplane; sel != nil {
			for k := range sel.MatchLabels {
				keys[k] = true
			}
		}
	}
	for _, k := range applied.LabelKeys() {
		keys[k] = true
	}
	for _, p := range pols {
		for _, r := range p.Spec.Allow {
			for _, t := range r.OnboardTo {
				if t.WorkloadSelector != nil {
					for k := range t.WorkloadSelector.MatchLabels {
						keys[k] = true
					}
				}
			}
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkLabels: every label key in keys must read the same on the
// Dataplane as the role's tag of that key — present with the same value,
// or absent from both. kuma.io/service may be any of the role's services.
func checkLabels(role Role, dp *resource.Dataplane, keys []string) error {
	for _, k := range keys {
		label, hasLabel := dp.Labels[k]
		tag, hasTag := role.Tags[k]
		if k == resource.TagService {
			if hasLabel && !serviceSet(tag)[label] {
				return forbidden(ReasonRoleLabel, fmt.Sprintf("the Dataplane's label %s=%q is not one of IAM role %s's services", k, label, role.ARN))
			}
			continue
		}
		switch {
		case hasLabel && !hasTag:
			return forbidden(ReasonRoleLabel, fmt.Sprintf("the Dataplane's label %s=%q decides its identity but IAM role %s has no tag %s; tag the role or drop the label", k, label, role.ARN, k))
		case hasLabel && tag != label:
			return forbidden(ReasonRoleLabel, fmt.Sprintf("the Dataplane's label %s=%q differs from IAM role %s's tag %s=%q", k, label, role.ARN, k, tag))
		case !hasLabel && hasTag:
			return forbidden(ReasonRoleLabel, fmt.Sprintf("IAM role %s has tag %s=%q, which decides identities, but the Dataplane lacks label %s; add it", role.ARN, k, tag, k))
		}
	}
	return nil
}
