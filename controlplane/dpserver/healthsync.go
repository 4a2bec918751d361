package dpserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

func (s *Server) healthSync(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		problem.Write(w, problem.New(http.StatusUnauthorized, ReasonUnauthenticated, "authentication required", "send the dataplane token as Authorization: Bearer"))
		return
	}
	claims, err := s.cfg.Tokens.VerifyDataplaneToken(r.Context(), strings.TrimSpace(raw))
	if err != nil {
		s.log.InfoContext(r.Context(), "health sync refused", "error", err)
		problem.Write(w, problem.New(http.StatusUnauthorized, ReasonUnauthenticated, "invalid dataplane token", "log in again"))
		return
	}
	var req dpapi.HealthSyncRequest
	if err := readJSON(w, r, dpapi.MaxHealthSyncBody, &req); err != nil {
		problem.Write(w, err)
		return
	}
	if req.Mesh == "" && req.Name == "" {
		req.Mesh, req.Name = claims.Mesh, claims.Name
	}
	if req.Mesh != claims.Mesh || req.Name != claims.Name {
		problem.Write(w, problem.Newf(http.StatusForbidden, ReasonForbidden, "not your dataplane", "the token is for %s/%s", claims.Mesh, claims.Name))
		return
	}
	revokedAt, err := token.RevokedAt(r.Context(), s.cfg.Store, claims.Mesh, claims.Name)
	if err != nil {
		problem.Write(w, s.internal(r.Context(), "reading revocation", err))
		return
	}
	if token.Revoked(claims, revokedAt) {
		s.log.InfoContext(r.Context(), "health sync refused", "reason", ReasonTokenRevoked, "mesh", claims.Mesh, "name", claims.Name)
		problem.Write(w, problem.New(http.StatusUnauthorized, ReasonTokenRevoked, "dataplane token revoked", "the tokens of this Dataplane were revoked; log in again"))
		return
	}
	resp, err := s.syncHealth(r.Context(), req, func(ctx context.Context, dp *resource.Dataplane) error { return s.matchToken(ctx, claims, dp) })
	if err != nil {
		problem.Write(w, err)
		return
	}
	writeJSON(w, resp)
}

// Reason codes of health syncs whose token does not hold the Dataplane.
const (
	// ReasonTokenRevoked (401): the Dataplane's tokens were revoked; the
	// agent logs in again.
	ReasonTokenRevoked = "dataplane_token_revoked"
	// ReasonOwnerMismatch (403): a role owns the Dataplane and the token
	// is not that role's (RoleId).
	ReasonOwnerMismatch = "dataplane_owner_mismatch"
	// ReasonProxyTypeMismatch (403): the token's proxy type is not the
	// Dataplane's.
	ReasonProxyTypeMismatch = "proxy_type_mismatch"
	// ReasonIdentityMismatch (403): an operator applied the Dataplane and
	// the token's SPIFFE ID is not the one the Dataplane has.
	ReasonIdentityMismatch = "spiffe_id_mismatch"
	// ReasonTokenStale (401): the owner's token names an identity the
	// Dataplane no longer has (a MeshIdentity changed); the agent logs in
	// again and gets a token for the new one (its ADS stream was closed).
	ReasonTokenStale = "dataplane_token_stale"
)

// matchToken checks that a token with claims c may act for dp: its proxy
// type, and the owner role's RoleId (constant time) or, for a Dataplane an
// operator applied, the SPIFFE ID the Dataplane has in its mesh.
func (s *Server) matchToken(ctx context.Context, c token.DataplaneClaims, dp *resource.Dataplane) error {
	if c.ProxyType != dp.ProxyType() {
		return problem.Newf(http.StatusForbidden, ReasonProxyTypeMismatch, "not your dataplane", "the token is for a proxy of type %s, the Dataplane is a %s", c.ProxyType, dp.ProxyType())
	}
	if dp.Owner != nil {
		if dp.Owner.RoleID == "" || subtle.ConstantTimeCompare([]byte(c.RoleID), []byte(dp.Owner.RoleID)) != 1 {
			return problem.New(http.StatusForbidden, ReasonOwnerMismatch, "not your dataplane", "another IAM role owns this Dataplane")
		}
	}
	id, err := s.spiffeIDOf(ctx, dp)
	if err != nil {
		return err
	}
	if dp.Owner != nil && c.SPIFFEID != id {
		return problem.Newf(http.StatusUnauthorized, ReasonTokenStale, "log in again", "the token is for %s; the Dataplane's identity is now %s", c.SPIFFEID, id)
	}
	if c.SPIFFEID != id {
		return problem.Newf(http.StatusForbidden, ReasonIdentityMismatch, "not your dataplane", "the token is for %s, not the Dataplane's identity", c.SPIFFEID)
	}
	return nil
}

// spiffeIDOf computes dp's SPIFFE ID from its mesh and MeshIdentities.
func (s *Server) spiffeIDOf(ctx context.Context, dp *resource.Dataplane) (string, error) {
	rec, err := s.cfg.Store.Get(ctx, store.Key{Kind: resource.KindMesh, Name: dp.Mesh})
	if err != nil {
		return "", s.internal(ctx, "reading mesh", err)
	}
	mesh, err := resource.Unmarshal(resource.KindMesh, rec.Spec)
	if err != nil {
		return "", s.internal(ctx, "decoding mesh", err)
	}
	recs, err := s.cfg.Store.List(ctx, resource.KindMeshIdentity, store.ListOptions{Mesh: dp.Mesh})
	if err != nil {
		return "", s.internal(ctx, "listing mesh identities", err)
	}
	ids := make([]*resource.MeshIdentity, 0, len(recs))
	for _, r := range recs {
		o, err := resource.Unmarshal(resource.KindMeshIdentity, r.Spec)
		if err != nil {
			return "", s.internal(ctx, "decoding mesh identity", err)
		}
		ids = append(ids, o.(*resource.MeshIdentity))
	}
	id, err := resource.SPIFFEID(mesh.(*resource.Mesh), resource.SelectIdentity(ids, dp), dp)
	if err != nil {
		return "", problem.New(http.StatusForbidden, ReasonIdentityMismatch, "not your dataplane", "the Dataplane's SPIFFE ID cannot be computed: "+err.Error())
	}
	return id.String(), nil
}

// HealthSync sets networking.inbound[i].state of the stored Dataplane
// (Ready / NotReady) from req, retrying on version conflicts. An
// unchanged Dataplane is not written. It checks no token: the handler of
// /v1/health-sync does.
func (s *Server) HealthSync(ctx context.Context, req dpapi.HealthSyncRequest) (*dpapi.HealthSyncResponse, error) {
	return s.syncHealth(ctx, req, nil)
}

// syncHealth is HealthSync; allow, when not nil, is asked about the
// stored Dataplane before it is changed (the same version it writes).
func (s *Server) syncHealth(ctx context.Context, req dpapi.HealthSyncRequest, allow func(context.Context, *resource.Dataplane) error) (*dpapi.HealthSyncResponse, error) {
	key := store.Key{Kind: resource.KindDataplane, Mesh: req.Mesh, Name: req.Name}
	want := map[int]bool{}
	for _, in := range req.Inbounds {
		want[in.Port] = in.Ready
	}
	for attempt := 0; attempt < 10; attempt++ {
		rec, err := s.cfg.Store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil, problem.Newf(http.StatusNotFound, ReasonNotFound, "dataplane not found", "Dataplane %s/%s does not exist; bootstrap again", req.Mesh, req.Name)
		}
		if err != nil {
			return nil, s.internal(ctx, "reading dataplane", err)
		}
		obj, err := resource.Unmarshal(resource.KindDataplane, rec.Spec)
		if err != nil {
			return nil, s.internal(ctx, "decoding dataplane", err)
		}
		dp := obj.(*resource.Dataplane)
		if dp.Mesh == "" {
			dp.Mesh = req.Mesh
		}
		if allow != nil {
			if err := allow(ctx, dp); err != nil {
				s.log.InfoContext(ctx, "health sync refused", "mesh", req.Mesh, "name", req.Name, "error", err)
				return nil, err
			}
		}
		metrics, err := s.metricsFor(ctx, dp)
		if err != nil {
			return nil, err
		}
		changed := false
		resp := &dpapi.HealthSyncResponse{Metrics: metrics}
		for i := range dp.Networking.Inbound {
			in := &dp.Networking.Inbound[i]
			ready, ok := want[in.Port]
			if !ok {
				ready = req.Ready
			}
			state := resource.StateReady
			if !ready || req.Draining {
				state = resource.StateNotReady
			}
			cur := in.State
			if cur == "" {
				cur = resource.StateReady
			}
			if cur != state {
				in.State, changed = state, true
			}
			resp.Inbounds = append(resp.Inbounds, dpapi.InboundState{Port: in.Port, Service: in.Service(), State: state})
		}
		if !changed {
			return resp, nil
		}
		spec, err := resource.Marshal(dp)
		if err != nil {
			return nil, s.internal(ctx, "encoding dataplane", err)
		}
		_, err = store.UpdateRecord(ctx, s.cfg.Store, store.Record{Key: key, Version: rec.Version, Spec: spec})
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, s.internal(ctx, "storing dataplane", err)
		}
		resp.Changed = true
		s.log.InfoContext(ctx, "dataplane health changed", "mesh", req.Mesh, "name", req.Name, "inbounds", resp.Inbounds)
		return resp, nil
	}
	return nil, problem.New(http.StatusConflict, "conflict", "the Dataplane keeps changing", "retry")
}
