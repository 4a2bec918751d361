package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// LabelECSCluster, on a Dataplane, names the ECS cluster of its task (the
// agent sets it from task metadata); with ECSMESH_AWSIAM_VERIFY_ECS_TASK
// the CP looks the task up there. Without it, the clusters named by the
// mesh's OnboardingPolicies are tried, then "default". The label is only a
// hint: the task must really run there with the caller's role.
const LabelECSCluster = "ecsmesh.io/ecs-cluster"

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
	if dp == nil {
		dp, err = v.dataplane(ctx, req.Mesh, req.Name)
		if err != nil {
			return nil, err
		}
	}
	mi := resource.SelectIdentity(identities, dp)
	// 12. tags.
	if err := checkTags(role, req, dp, mi); err != nil {
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
	if err := v.checkOnboarding(ctx, req.Mesh, ident, dp); err != nil {
		return nil, err
	}
	id, err := resource.SPIFFEID(mesh, mi, dp)
	if err != nil {
		return nil, problem.New(http.StatusBadRequest, ReasonInvalidRequest, "the dataplane's SPIFFE ID cannot be computed", err.Error())
	}
	ident.SPIFFEID = id.String()
	raw, claims, err := v.tokens.IssueDataplaneToken(ctx, token.DataplaneClaims{
		Mesh: req.Mesh, Name: req.Name, SPIFFEID: ident.SPIFFEID, RoleARN: role.ARN, RoleID: role.RoleID,
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

func (v *Verifier) dataplane(ctx context.Context, mesh, name string) (*resource.Dataplane, error) {
	rec, err := v.store.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.New(http.StatusNotFound, ReasonDataplaneNotFound, "IAM login not possible", "Dataplane "+mesh+"/"+name+" does not exist; apply it or use /bootstrap")
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

// checkTags runs check 12.
func checkTags(role Role, req LoginRequest, dp *resource.Dataplane, mi *resource.MeshIdentity) error {
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
	if hasSvc {
		allowed := map[string]bool{}
		for _, s := range strings.Split(svcTag, ",") {
			allowed[strings.TrimSpace(s)] = true
		}
		for _, s := range dp.Services() {
			if !allowed[s] {
				return forbidden(ReasonRoleService, fmt.Sprintf("IAM role %s may serve %q, not %q", role.ARN, svcTag, s))
			}
		}
	}
	if mi.UsesWorkload() {
		wl, hasWl := role.Tags[resource.TagWorkload]
		label, hasLabel := dp.Labels[resource.TagWorkload]
		switch {
		case hasWl && wl != dp.Workload():
			return forbidden(ReasonRoleWorkload, fmt.Sprintf("IAM role %s is workload %q, the Dataplane claims %q", role.ARN, wl, dp.Workload()))
		case !hasWl && hasLabel:
			return forbidden(ReasonRoleWorkload, fmt.Sprintf("IAM role %s lacks tag kuma.io/workload, the Dataplane claims workload %q", role.ARN, label))
		case !hasWl && !hasSvc:
			// The workload falls back to the first service, which nothing
			// restricts: the identity would be the caller's choice.
			return forbidden(ReasonRoleWorkload, "IAM role "+role.ARN+" needs tag kuma.io/workload (or kuma.io/service) since the mesh identity uses the workload")
		}
	}
	return nil
}
