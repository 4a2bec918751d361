package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// Revoker ends the tokens of a Dataplane: every dataplane token of
// mesh/name issued up to now is refused and its xDS streams are closed on
// every replica. The Options' Rotator provides it when it has a
// RevokeDataplane method (*token.Issuer's signature).
type Revoker interface {
	RevokeDataplane(ctx context.Context, mesh, name string) (time.Time, error)
}

// revoke serves POST /meshes/{mesh}/dataplanes/{name}/revoke. Revoking
// does not stop the owner role from logging in again and getting a new
// token; remove the role's tags for that.
func (h *handler) revoke(w http.ResponseWriter, r *http.Request) {
	mesh, name := r.PathValue("mesh"), r.PathValue("name")
	if _, _, err := h.o.Manager.Get(r.Context(), resource.KindDataplane, mesh, name); err != nil {
		h.fail(w, r, err)
		return
	}
	rv, ok := h.o.Rotator.(Revoker)
	if !ok {
		h.fail(w, r, problem.New(http.StatusServiceUnavailable, "revocation_unavailable", "token revocation is not available", ""))
		return
	}
	at, err := rv.RevokeDataplane(r.Context(), mesh, name)
	if err != nil {
		h.fail(w, r, fmt.Errorf("admin: revoking the tokens of dataplane %s/%s: %w", mesh, name, err))
		return
	}
	h.o.Logger.Info("revoked dataplane tokens", "mesh", mesh, "dataplane", name, "revokedAt", at)
	writeJSON(w, http.StatusOK, map[string]any{
		"mesh": mesh, "name": name, "revokedAt": at,
		"note": "tokens issued up to revokedAt are refused and their streams closed; the owner role can still log in again: remove its tags to stop it",
	})
}
