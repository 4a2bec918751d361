package xds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// sessionDoc is a KindSession record: which replicas hold a stream of
// the dataplane, one entry per replica. Each replica writes only its own
// entry, conditional on the record's version, so a disconnect on one
// replica never hides a stream live on another, and expire's delete of
// the Dataplane conflicts with any concurrent connect.
type sessionDoc struct {
	Replicas map[string]replicaSession `json:"replicas"`
}

// replicaSession is one replica's entry of a sessionDoc. Session is the
// replica process's session (its heartbeat carries it), so a replica
// restarted under the same ID does not revive its predecessor's entries.
type replicaSession struct {
	Session        string    `json:"session"`
	ConnectedAt    time.Time `json:"connectedAt"`
	DisconnectedAt time.Time `json:"disconnectedAt,omitzero"`
	BindOutbounds  bool      `json:"bindOutbounds,omitempty"`
}

// legacySessionDoc is the single-replica session record of earlier
// versions (the last connect won); decodeSession reads it as one entry.
type legacySessionDoc struct {
	Replica        string    `json:"replica"`
	ConnectedAt    time.Time `json:"connectedAt"`
	DisconnectedAt time.Time `json:"disconnectedAt,omitzero"`
	BindOutbounds  bool      `json:"bindOutbounds,omitempty"`
}

func decodeSession(b []byte) (sessionDoc, error) {
	var d sessionDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return d, err
	}
	if d.Replicas == nil {
		d.Replicas = map[string]replicaSession{}
		var l legacySessionDoc
		if err := json.Unmarshal(b, &l); err != nil {
			return d, err
		}
		if l.Replica != "" {
			// Replicas of that version heartbeat without a session.
			d.Replicas[l.Replica] = replicaSession{ConnectedAt: l.ConnectedAt, DisconnectedAt: l.DisconnectedAt, BindOutbounds: l.BindOutbounds}
		}
	}
	return d, nil
}

// live reports whether the entry of replica r is a stream held by a live
// replica process; replicas maps live replicas to their sessions.
func (e replicaSession) live(r string, replicas map[string]string) bool {
	sess, ok := replicas[r]
	return ok && sess == e.Session && e.DisconnectedAt.IsZero()
}

type replicaDoc struct {
	HeartbeatAt time.Time `json:"heartbeatAt"`
	Session     string    `json:"session,omitempty"`
}

func sessionKey(mesh, name string) store.Key {
	return store.Key{Kind: KindSession, Mesh: mesh, Name: name}
}

// heartbeat refreshes this replica's record; its sessions are live while
// the record is.
func (s *Server) heartbeat(ctx context.Context) error {
	now := s.o.Now()
	spec, _ := json.Marshal(replicaDoc{HeartbeatAt: now.UTC(), Session: s.session})
	_, err := store.UpsertRecord(ctx, s.o.Store, store.Record{
		Key: store.Key{Kind: KindReplica, Name: s.o.InstanceID}, Spec: spec, ExpiresAt: now.Add(s.o.SessionTTL),
	})
	if err != nil {
		return fmt.Errorf("xds: replica heartbeat: %w", err)
	}
	return nil
}

// listReplicas maps the live replicas to their sessions.
func (s *Server) listReplicas(ctx context.Context) (map[string]string, error) {
	recs, err := s.o.Store.List(ctx, KindReplica, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("xds: listing replicas: %w", err)
	}
	live := make(map[string]string, len(recs))
	for _, r := range recs {
		var d replicaDoc
		_ = json.Unmarshal(r.Spec, &d) // unreadable: live, without a session
		live[r.Name] = d.Session
	}
	return live, nil
}

// refreshReplicas re-lists live replicas (records expire silently) and
// reports whether the set changed.
func (s *Server) refreshReplicas(ctx context.Context, w *world) bool {
	live, err := s.listReplicas(ctx)
	if err != nil {
		s.log.Error("xds: listing replicas", "err", err)
		return false
	}
	changed := len(live) != len(w.replicas)
	for name, sess := range live {
		if cur, ok := w.replicas[name]; !ok || cur != sess {
			changed = true
		}
	}
	w.replicas = live
	return changed
}

// syncSession writes this replica's entry of the dataplane's session
// record from its local streams: connected while it holds one, else
// disconnected. Every write reads the record, then the local state, and
// is conditional on the record's version, so concurrent syncs of one node
// (a stream closing while another opens) end on the current local state.
// When the last local stream is gone it arms the grace timer.
func (s *Server) syncSession(ctx context.Context, mesh, name string) error {
	id := NodeID(mesh, name)
	err := s.writeSession(ctx, mesh, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byNode[id]) > 0 {
		if t := s.timers[id]; t != nil {
			t.Stop()
			delete(s.timers, id)
		}
		return err
	}
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
	return err
}

func (s *Server) writeSession(ctx context.Context, mesh, name string) error {
	id, key := NodeID(mesh, name), sessionKey(mesh, name)
	for attempt := 0; attempt < 10; attempt++ {
		rec, err := s.o.Store.Get(ctx, key)
		exists := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		doc := sessionDoc{Replicas: map[string]replicaSession{}}
		if exists {
			if doc, err = decodeSession(rec.Spec); err != nil {
				s.log.Warn("xds: replacing unreadable session record", "key", key.String(), "err", err)
				doc = sessionDoc{Replicas: map[string]replicaSession{}}
			}
		}
		s.mu.Lock()
		connected, bind := len(s.byNode[id]) > 0, false
		for _, st := range s.byNode[id] {
			bind = bind || st.bind
		}
		s.mu.Unlock()
		now := s.o.Now().UTC()
		cur, had := doc.Replicas[s.o.InstanceID]
		had = had && cur.Session == s.session
		mine := cur
		switch {
		case connected && had && cur.DisconnectedAt.IsZero() && cur.BindOutbounds == bind:
			return nil
		case connected:
			if !had || !cur.DisconnectedAt.IsZero() {
				mine = replicaSession{Session: s.session, ConnectedAt: now}
			}
			mine.BindOutbounds = bind
		case !had || !cur.DisconnectedAt.IsZero():
			return nil
		default:
			mine.DisconnectedAt = now
		}
		doc.Replicas[s.o.InstanceID] = mine
		s.prune(&doc, now)
		spec, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if exists {
			rec.Spec = spec
			_, err = store.UpdateRecord(ctx, s.o.Store, rec)
		} else {
			_, err = store.CreateRecord(ctx, s.o.Store, store.Record{Key: key, Spec: spec})
		}
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) {
			continue
		}
		return err
	}
	return fmt.Errorf("xds: recording the session of %s: %w (too many concurrent writers)", id, store.ErrConflict)
}

// prune drops entries of other replicas that ended long ago: no expiry
// decision reads them any more.
func (s *Server) prune(doc *sessionDoc, now time.Time) {
	keep := max(s.o.Grace, s.o.NeverConnectedGrace)
	for r, e := range doc.Replicas {
		if r != s.o.InstanceID && !e.DisconnectedAt.IsZero() && now.Sub(e.DisconnectedAt) > keep {
			delete(doc.Replicas, r)
		}
	}
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
	if obj.GetMeta().Labels[resource.LabelOrigin] != resource.OriginBootstrap {
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
		// An empty session record, created in the same batch, makes the
		// delete fail if a replica records a connect meanwhile.
		spec, _ := json.Marshal(sessionDoc{Replicas: map[string]replicaSession{}})
		writes = append(writes, store.Write{Mode: store.Create, Record: store.Record{
			Key: sessionKey(mesh, name), Spec: spec, ExpiresAt: now.Add(s.o.NeverConnectedGrace)}})
	case err != nil:
		return err
	default:
		d, err := decodeSession(sess.Spec)
		if err != nil {
			return fmt.Errorf("xds: session %s: %w", sess.Key, err)
		}
		replicas, err := s.listReplicas(ctx)
		if err != nil {
			return err
		}
		// Only a write after the last stream ended can be a new
		// /bootstrap; the agent's own health-sync writes while draining
		// come before.
		var since time.Time
		for r, e := range d.Replicas {
			switch {
			case e.live(r, replicas):
				return nil // connected somewhere
			case !e.DisconnectedAt.IsZero() && now.Sub(e.DisconnectedAt) < s.o.Grace:
				return nil // a later disconnect; its own timer decides
			}
			t := e.DisconnectedAt
			if t.IsZero() {
				t = e.ConnectedAt // its replica is gone
			}
			if t.After(since) {
				since = t
			}
		}
		if dpRec.ModifiedAt.After(since) && now.Sub(dpRec.ModifiedAt) < s.o.NeverConnectedGrace {
			return nil // bootstrapped again since; give the new sidecar time
		}
		writes = append(writes, store.Write{Mode: store.Delete, Record: store.Record{Key: sess.Key, Version: sess.Version}})
	}
	if _, err := s.o.Store.Batch(ctx, writes); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) {
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
			if e.dp.Labels[resource.LabelOrigin] != resource.OriginBootstrap || w.online(mesh, name) {
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
