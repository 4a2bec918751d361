package xds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// livenessTracker records which replicas hold each dataplane's streams
// and removes the bootstrap-created Dataplanes whose streams are gone
// (garbage collection). *liveness implements it.
type livenessTracker interface {
	// heartbeat refreshes this replica's record; its sessions are live
	// while the record is.
	heartbeat(ctx context.Context) error
	// sync records whether this replica holds a stream of the dataplane
	// and, when it holds none, arms the dataplane's grace timer.
	sync(ctx context.Context, mesh, name string) error
	// sweep removes those of dps, bootstrap-created Dataplanes without a
	// live stream anywhere, that neither a local stream nor a grace timer
	// covers and whose grace is over.
	sweep(ctx context.Context, dps []store.Key)
	// stop cancels the grace timers and drops this replica's heartbeat.
	stop(ctx context.Context)
}

// liveness is the livenessTracker of one replica: it writes the replica's
// heartbeat and its entries of the session records from the local
// streams, and deletes a bootstrap-created Dataplane once its streams have
// been gone for Grace on every replica.
type liveness struct {
	o       Options
	log     *slog.Logger
	streams *streamRegistry
	// session names this process in its heartbeat and session entries.
	session string

	mu     sync.Mutex // taken after streams.mu
	timers map[string]*time.Timer
}

var _ livenessTracker = (*liveness)(nil)

func newLiveness(o Options, log *slog.Logger, streams *streamRegistry) *liveness {
	return &liveness{o: o, log: log, streams: streams, session: randomID(), timers: map[string]*time.Timer{}}
}

// heartbeat refreshes this replica's record; its sessions are live while
// the record is.
func (l *liveness) heartbeat(ctx context.Context) error {
	now := l.o.Now()
	spec, _ := json.Marshal(replicaDoc{HeartbeatAt: now.UTC(), Session: l.session})
	_, err := store.UpsertRecord(ctx, l.o.Store, store.Record{
		Key: store.Key{Kind: KindReplica, Name: l.o.InstanceID}, Spec: spec, ExpiresAt: now.Add(l.o.SessionTTL),
	})
	if err != nil {
		return fmt.Errorf("xds: replica heartbeat: %w", err)
	}
	return nil
}

// sync writes this replica's entry of the dataplane's session record
// from its local streams: connected while it holds one, else
// disconnected. Every write reads the record, then the local state, and
// is conditional on the record's version, so concurrent syncs of one node
// (a stream closing while another opens) end on the current local state.
// When the last local stream is gone it arms the grace timer.
func (l *liveness) sync(ctx context.Context, mesh, name string) error {
	id := NodeID(mesh, name)
	err := l.writeSession(ctx, mesh, name)
	l.streams.withNode(id, func(held, _ bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if held {
			if t := l.timers[id]; t != nil {
				t.Stop()
				delete(l.timers, id)
			}
			return
		}
		if t := l.timers[id]; t != nil {
			t.Stop()
		}
		l.timers[id] = time.AfterFunc(l.o.Grace, func() {
			l.mu.Lock()
			delete(l.timers, id)
			l.mu.Unlock()
			if err := l.expire(context.Background(), mesh, name, false); err != nil {
				l.log.Error("xds: removing disconnected dataplane", "node", id, "error", err)
			}
		})
	})
	return err
}

// writeSession writes this replica's entry of the dataplane's session
// record, retrying on concurrent writes; see sync.
func (l *liveness) writeSession(ctx context.Context, mesh, name string) error {
	id, key := NodeID(mesh, name), sessionKey(mesh, name)
	for attempt := 0; attempt < 10; attempt++ {
		rec, err := l.o.Store.Get(ctx, key)
		exists := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		doc := sessionDoc{Replicas: map[string]replicaSession{}}
		if exists {
			if doc, err = decodeSession(rec.Spec); err != nil {
				l.log.Warn("xds: replacing unreadable session record", "key", key.String(), "error", err)
				doc = sessionDoc{Replicas: map[string]replicaSession{}}
			}
		}
		var connected, bind bool
		l.streams.withNode(id, func(held, b bool) { connected, bind = held, b })
		now := l.o.Now().UTC()
		cur, had := doc.Replicas[l.o.InstanceID]
		had = had && cur.Session == l.session
		mine := cur
		switch {
		case connected && had && cur.DisconnectedAt.IsZero() && cur.BindOutbounds == bind:
			return nil
		case connected:
			if !had || !cur.DisconnectedAt.IsZero() {
				mine = replicaSession{Session: l.session, ConnectedAt: now}
			}
			mine.BindOutbounds = bind
		case !had || !cur.DisconnectedAt.IsZero():
			return nil
		default:
			mine.DisconnectedAt = now
		}
		doc.Replicas[l.o.InstanceID] = mine
		l.prune(&doc, now)
		spec, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		if exists {
			rec.Spec = spec
			_, err = store.UpdateRecord(ctx, l.o.Store, rec)
		} else {
			_, err = store.CreateRecord(ctx, l.o.Store, store.Record{Key: key, Spec: spec})
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
func (l *liveness) prune(doc *sessionDoc, now time.Time) {
	keep := max(l.o.Grace, l.o.NeverConnectedGrace)
	for r, e := range doc.Replicas {
		if r != l.o.InstanceID && !e.DisconnectedAt.IsZero() && now.Sub(e.DisconnectedAt) > keep {
			delete(doc.Replicas, r)
		}
	}
}

// expire deletes a bootstrap-created Dataplane whose stream has been gone
// for Grace on every replica (or that never connected within
// NeverConnectedGrace). Operator-applied Dataplanes stay (offline).
func (l *liveness) expire(ctx context.Context, mesh, name string, sweeping bool) error {
	dpRec, err := l.o.Store.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name})
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
	now := l.o.Now()
	writes := []store.Write{{Mode: store.Delete, Record: store.Record{Key: dpRec.Key, Version: dpRec.Version}}}
	sess, err := l.o.Store.Get(ctx, sessionKey(mesh, name))
	switch {
	case errors.Is(err, store.ErrNotFound):
		if now.Sub(dpRec.ModifiedAt) < l.o.NeverConnectedGrace {
			return nil
		}
		// An empty session record, created in the same batch, makes the
		// delete fail if a replica records a connect meanwhile.
		spec, _ := json.Marshal(sessionDoc{Replicas: map[string]replicaSession{}})
		writes = append(writes, store.Write{Mode: store.Create, Record: store.Record{
			Key: sessionKey(mesh, name), Spec: spec, ExpiresAt: now.Add(l.o.NeverConnectedGrace)}})
	case err != nil:
		return err
	default:
		d, err := decodeSession(sess.Spec)
		if err != nil {
			return fmt.Errorf("xds: session %s: %w", sess.Key, err)
		}
		replicas, err := listReplicas(ctx, l.o.Store)
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
			case !e.DisconnectedAt.IsZero() && now.Sub(e.DisconnectedAt) < l.o.Grace:
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
		if dpRec.ModifiedAt.After(since) && now.Sub(dpRec.ModifiedAt) < l.o.NeverConnectedGrace {
			return nil // bootstrapped again since; give the new sidecar time
		}
		writes = append(writes, store.Write{Mode: store.Delete, Record: store.Record{Key: sess.Key, Version: sess.Version}})
	}
	if _, err := l.o.Store.Batch(ctx, writes); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) {
			return nil // changed meanwhile: someone reconnected or deleted it
		}
		return err
	}
	l.log.Info("xds: removed dataplane without stream", "mesh", mesh, "dataplane", name, "sweep", sweeping)
	return nil
}

// sweep catches what no local timer covers: dataplanes of crashed
// replicas and dataplanes that never connected. dps are the
// bootstrap-created Dataplanes no replica holds a live stream of.
func (l *liveness) sweep(ctx context.Context, dps []store.Key) {
	for _, k := range dps {
		id := NodeID(k.Mesh, k.Name)
		var covered bool
		l.streams.withNode(id, func(held, _ bool) {
			l.mu.Lock()
			_, pending := l.timers[id]
			l.mu.Unlock()
			covered = pending || held
		})
		if covered {
			continue
		}
		if err := l.expire(ctx, k.Mesh, k.Name, true); err != nil {
			l.log.Error("xds: sweeping dataplane", "mesh", k.Mesh, "dataplane", k.Name, "error", err)
		}
	}
}

// stop cancels the grace timers, then drops this replica's heartbeat on
// shutdown, so other replicas see its sessions offline at once.
func (l *liveness) stop(ctx context.Context) {
	l.mu.Lock()
	for id, t := range l.timers {
		t.Stop()
		delete(l.timers, id)
	}
	l.mu.Unlock()
	err := store.DeleteRecord(ctx, l.o.Store, store.Key{Kind: KindReplica, Name: l.o.InstanceID}, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		l.log.Warn("xds: releasing replica record", "error", err)
	}
}
