package xds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// sessionDoc is a KindSession record: which replica holds the
// dataplane's stream. Several replicas may race; the latest connect wins
// and a disconnect only counts for the session that wrote it.
type sessionDoc struct {
	Replica        string    `json:"replica"`
	Session        string    `json:"session"`
	ConnectedAt    time.Time `json:"connectedAt"`
	DisconnectedAt time.Time `json:"disconnectedAt,omitzero"`
	BindOutbounds  bool      `json:"bindOutbounds,omitempty"`
}

type replicaDoc struct {
	HeartbeatAt time.Time `json:"heartbeatAt"`
}

func sessionKey(mesh, name string) store.Key {
	return store.Key{Kind: KindSession, Mesh: mesh, Name: name}
}

// heartbeat refreshes this replica's record; its sessions are live while
// the record is.
func (s *Server) heartbeat(ctx context.Context) error {
	now := s.o.Now()
	spec, _ := json.Marshal(replicaDoc{HeartbeatAt: now.UTC()})
	_, err := store.UpsertRecord(ctx, s.o.Store, store.Record{
		Key: store.Key{Kind: KindReplica, Name: s.o.InstanceID}, Spec: spec, ExpiresAt: now.Add(s.o.SessionTTL),
	})
	if err != nil {
		return fmt.Errorf("xds: replica heartbeat: %w", err)
	}
	return nil
}

// refreshReplicas re-lists live replicas (records expire silently) and
// reports whether the set changed.
func (s *Server) refreshReplicas(ctx context.Context, w *world) bool {
	recs, err := s.o.Store.List(ctx, KindReplica, store.ListOptions{})
	if err != nil {
		s.log.Error("xds: listing replicas", "err", err)
		return false
	}
	live := make(map[string]bool, len(recs))
	for _, r := range recs {
		live[r.Name] = true
	}
	changed := len(live) != len(w.replicas)
	for name := range live {
		if !w.replicas[name] {
			changed = true
		}
	}
	w.replicas = live
	return changed
}

// connect records that this replica holds the dataplane's stream.
func (s *Server) connect(ctx context.Context, mesh, name string, bind bool) error {
	s.mu.Lock()
	if t := s.timers[NodeID(mesh, name)]; t != nil {
		t.Stop()
		delete(s.timers, NodeID(mesh, name))
	}
	s.mu.Unlock()
	spec, _ := json.Marshal(sessionDoc{Replica: s.o.InstanceID, Session: randomID(), ConnectedAt: s.o.Now().UTC(), BindOutbounds: bind})
	_, err := store.UpsertRecord(ctx, s.o.Store, store.Record{Key: sessionKey(mesh, name), Spec: spec})
	return err
}

// disconnect marks this replica's session of the dataplane ended and
// schedules the grace check.
func (s *Server) disconnect(ctx context.Context, mesh, name string) error {
	rec, err := s.o.Store.Get(ctx, sessionKey(mesh, name))
	if err == nil {
		var d sessionDoc
		if json.Unmarshal(rec.Spec, &d) == nil && d.Replica == s.o.InstanceID && d.DisconnectedAt.IsZero() {
			d.DisconnectedAt = s.o.Now().UTC()
			rec.Spec, _ = json.Marshal(d)
			if _, err := store.UpdateRecord(ctx, s.o.Store, rec); err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	id := NodeID(mesh, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.timers[id]; t != nil {
		t.Stop()
	}
	s.timers[id] = time.AfterFunc(s.o.Grace, func() {
		s.mu.Lock()
		delete(s.timers, id)
		s.mu.Unlock()
		if err := s.expire(context.Background(), mesh, name, false); err != nil {
			s.log.Error("xds: removing disconnected dataplane", "node", id, "err", err)
		}
	})
	return nil
}

// expire deletes a bootstrap-created Dataplane whose stream has been gone
// for Grace on every replica (or that never connected within
// NeverConnectedGrace). Operator-applied Dataplanes stay (offline).
func (s *Server) expire(ctx context.Context, mesh, name string, sweeping bool) error {
	dpRec, err := s.o.Store.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	obj, err := resource.Unmarshal(resource.KindDataplane, dpRec.Spec)
	if err != nil {
		return err
	}
	if obj.GetMeta().Labels[LabelOrigin] != OriginBootstrap {
		return nil
	}
	now := s.o.Now()
	writes := []store.Write{{Mode: store.Delete, Record: store.Record{Key: dpRec.Key, Version: dpRec.Version}}}
	sess, err := s.o.Store.Get(ctx, sessionKey(mesh, name))
	switch {
	case errors.Is(err, store.ErrNotFound):
		if now.Sub(dpRec.ModifiedAt) < s.o.NeverConnectedGrace {
			return nil
		}
	case err != nil:
		return err
	default:
		var d sessionDoc
		if err := json.Unmarshal(sess.Spec, &d); err != nil {
			return fmt.Errorf("xds: session %s: %w", sess.Key, err)
		}
		replicaLive := true
		if _, err := s.o.Store.Get(ctx, store.Key{Kind: KindReplica, Name: d.Replica}); errors.Is(err, store.ErrNotFound) {
			replicaLive = false
		} else if err != nil {
			return err
		}
		// Only a write after the stream ended can be a new /bootstrap; the
		// agent's own health-sync writes while draining come before.
		since := d.DisconnectedAt
		if since.IsZero() {
			since = d.ConnectedAt
		}
		switch {
		case d.DisconnectedAt.IsZero() && replicaLive:
			return nil // connected somewhere
		case !d.DisconnectedAt.IsZero() && now.Sub(d.DisconnectedAt) < s.o.Grace:
			return nil // a later disconnect; its own timer decides
		case dpRec.ModifiedAt.After(since) && now.Sub(dpRec.ModifiedAt) < s.o.NeverConnectedGrace:
			return nil // bootstrapped again since; give the new sidecar time
		}
		writes = append(writes, store.Write{Mode: store.Delete, Record: store.Record{Key: sess.Key, Version: sess.Version}})
	}
	if _, err := s.o.Store.Batch(ctx, writes); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil // changed meanwhile: someone reconnected or deleted it
		}
		return err
	}
	s.log.Info("xds: removed dataplane without stream", "mesh", mesh, "dataplane", name, "sweep", sweeping)
	return nil
}

// sweep catches what no local timer covers: dataplanes of crashed
// replicas and dataplanes that never connected.
func (s *Server) sweep(ctx context.Context, w *world) {
	for mesh, dps := range w.dps {
		for name, e := range dps {
			if e.dp.Labels[LabelOrigin] != OriginBootstrap || w.online(mesh, name) {
				continue
			}
			s.mu.Lock()
			_, pending := s.timers[NodeID(mesh, name)]
			_, local := s.byNode[NodeID(mesh, name)]
			s.mu.Unlock()
			if pending || local {
				continue
			}
			if err := s.expire(ctx, mesh, name, true); err != nil {
				s.log.Error("xds: sweeping dataplane", "mesh", mesh, "dataplane", name, "err", err)
			}
		}
	}
}

func (s *Server) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.timers {
		t.Stop()
		delete(s.timers, id)
	}
}

// release drops this replica's heartbeat on shutdown, so other replicas
// see its sessions offline at once.
func (s *Server) release(ctx context.Context) {
	err := store.DeleteRecord(ctx, s.o.Store, store.Key{Kind: KindReplica, Name: s.o.InstanceID}, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("xds: releasing replica record", "err", err)
	}
}
