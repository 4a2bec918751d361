package auth

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// temporaryError marks a re-check that could not be made (IAM or the
// store unreachable): the caller keeps the stream and tries again later.
type temporaryError struct{ err error }

func (e temporaryError) Error() string   { return e.err.Error() }
func (e temporaryError) Unwrap() error   { return e.err }
func (e temporaryError) Temporary() bool { return true }

// Recheck asks again whether the role a dataplane token was issued to
// may still hold dp: the role exists with the same RoleId (iam:GetRole
// through the cache, so at most one call per role per cache TTL), and its
// tags still admit dp (check 12 with the mesh's current identities and
// policies). The xDS server calls it periodically for every connected
// stream and closes the stream when it fails. Errors whose Temporary()
// is true mean the answer is unknown (IAM or the store is unavailable);
// any other error is a *problem.Problem saying why the role lost dp.
func (v *Verifier) Recheck(ctx context.Context, c token.DataplaneClaims, dp *resource.Dataplane) error {
	if c.RoleID == "" || c.RoleARN == "" {
		return forbidden(ReasonRoleNotFound, "the dataplane token names no IAM role")
	}
	caller, err := roleFromARN(c.RoleARN)
	if err != nil {
		return forbidden(ReasonRoleNotFound, "the dataplane token's role ARN "+c.RoleARN+" is not an IAM role ARN")
	}
	role, _, err := v.getRole(ctx, caller.Account, caller.RoleName)
	if err != nil {
		return temporaryIf5xx(err)
	}
	if !constantTimeEqual(role.RoleID, c.RoleID) {
		return forbidden(ReasonRoleIDMismatch, "IAM role "+caller.RoleName+" was re-created since the token was issued")
	}
	if dp.Owner != nil && !dp.OwnedBy(c.RoleID) {
		return NotOwned(dp.Mesh, dp.Name)
	}
	_, identities, err := v.meshState(ctx, c.Mesh)
	if err != nil {
		return temporaryIf5xx(err)
	}
	pols, err := v.policies(ctx, c.Mesh)
	if err != nil {
		return temporaryIf5xx(err)
	}
	req := LoginRequest{Mesh: c.Mesh, Name: c.Name, ProxyType: c.ProxyType}
	if err := checkTags(role, req, dp, v.anyService); err != nil {
		return err
	}
	return checkLabels(role, dp, identityLabelKeys(identities, resource.SelectIdentity(identities, dp), pols))
}

// temporaryIf5xx turns 5xx answers into temporary errors.
func temporaryIf5xx(err error) error {
	var p *problem.Problem
	if errors.As(err, &p) && p.Status >= 500 {
		return temporaryError{err}
	}
	return err
}

// roleFromARN reads account and role name from an IAM role ARN
// (arn:<partition>:iam::<account>:role[/<path>]/<name>).
func roleFromARN(s string) (assumedRole, error) {
	a, err := arn.Parse(s)
	if err != nil || a.Service != "iam" || a.AccountID == "" || !strings.HasPrefix(a.Resource, "role/") {
		return assumedRole{}, errors.New("auth: not an IAM role ARN")
	}
	name := a.Resource[strings.LastIndex(a.Resource, "/")+1:]
	if name == "" {
		return assumedRole{}, errors.New("auth: not an IAM role ARN")
	}
	return assumedRole{Partition: a.Partition, Account: a.AccountID, RoleName: name}, nil
}
