package dpserver

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ecsmesh/ecsmesh/controlplane/dpapi"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

func (s *Server) healthSync(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		problem.Write(w, problem.New(http.StatusUnauthorized, ReasonUnauthenticated, "authentication required", "send the dataplane token as Authorization: Bearer"))
		return
	}
	claims, err := s.cfg.Tokens.VerifyDataplaneToken(r.Context(), strings.TrimSpace(raw))
	if err != nil {
		s.log.InfoContext(r.Context(), "health sync refused", "err", err)
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
	resp, err := s.HealthSync(r.Context(), req)
	if err != nil {
		problem.Write(w, err)
		return
	}
	writeJSON(w, resp)
}

// HealthSync sets networking.inbound[i].state of the stored Dataplane
// (Ready / NotReady) from req, retrying on version conflicts. An
// unchanged Dataplane is not written.
func (s *Server) HealthSync(ctx context.Context, req dpapi.HealthSyncRequest) (*dpapi.HealthSyncResponse, error) {
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
		changed := false
		resp := &dpapi.HealthSyncResponse{}
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
