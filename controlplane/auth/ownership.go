package auth

import (
	"net/http"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// MayUse reports whether the IAM role with roleID may use the Dataplane
// name whose stored record is stored (nil when the name is free):
//
//   - /bootstrap (bootstrap true) may create a free name and update a
//     Dataplane its own role created; never one another role owns or an
//     operator applied.
//   - A login (bootstrap false) is for a stored Dataplane: one its own role
//     created, or one an operator applied (the role's tags must then cover
//     it, like any login).
//
// A Dataplane created by /bootstrap before owners were recorded (origin
// label, no owner) may be claimed by the next role its tags admit.
func MayUse(stored *resource.Dataplane, roleID string, bootstrap bool) bool {
	switch {
	case stored == nil:
		return bootstrap
	case stored.Owner != nil:
		return stored.OwnedBy(roleID)
	case stored.Labels[resource.LabelOrigin] == resource.OriginBootstrap:
		return true
	default:
		return !bootstrap
	}
}

// NotOwned is the answer when MayUse says no: the same for a name another
// role owns, an operator's name and (for a login) a name that does not
// exist, so that it reveals nothing about names that are not the caller's.
func NotOwned(mesh, name string) *problem.Problem {
	return problem.Newf(http.StatusConflict, ReasonDataplaneOwned, "Dataplane name not available",
		"Dataplane %s/%s cannot be used by this IAM role: it does not exist, belongs to another IAM role, or (for /bootstrap) was applied by an operator. "+
			"Give each task a Dataplane name of its own (e.g. {{ taskId }} in the name template)", mesh, name)
}
