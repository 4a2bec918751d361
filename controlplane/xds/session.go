package xds

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

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

// listReplicas maps the live replicas to their sessions.
func listReplicas(ctx context.Context, st store.Store) (map[string]string, error) {
	recs, err := st.List(ctx, KindReplica, store.ListOptions{})
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
