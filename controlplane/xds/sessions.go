package xds

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// DataplaneSession is a dataplane's ADS stream state as the session
// records show it, for read-only views (the GUI).
type DataplaneSession struct {
	// Online is true while a live replica holds a stream of the dataplane.
	Online bool
	// Replica holds the live stream (the first by name when several do);
	// when offline, the replica that last held one.
	Replica string
	// ConnectedAt is when that stream opened; DisconnectedAt when it
	// closed (zero while online).
	ConnectedAt, DisconnectedAt time.Time
}

// Sessions reads every dataplane's session record, keyed by mesh and
// name (Kind is empty). A dataplane without a record never connected.
func Sessions(ctx context.Context, st store.Store) (map[store.Key]DataplaneSession, error) {
	replicas, err := listReplicas(ctx, st)
	if err != nil {
		return nil, err
	}
	recs, err := st.List(ctx, KindSession, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("xds: listing sessions: %w", err)
	}
	out := make(map[store.Key]DataplaneSession, len(recs))
	for _, r := range recs {
		d, err := decodeSession(r.Spec)
		if err != nil {
			continue // unreadable: shown as never connected
		}
		names := make([]string, 0, len(d.Replicas))
		for name := range d.Replicas {
			names = append(names, name)
		}
		sort.Strings(names)
		var s DataplaneSession
		for _, name := range names {
			e := d.Replicas[name]
			if e.live(name, replicas) {
				s = DataplaneSession{Online: true, Replica: name, ConnectedAt: e.ConnectedAt}
				break
			}
			if e.ConnectedAt.After(s.ConnectedAt) {
				s = DataplaneSession{Replica: name, ConnectedAt: e.ConnectedAt, DisconnectedAt: e.DisconnectedAt}
			}
		}
		out[store.Key{Mesh: r.Mesh, Name: r.Name}] = s
	}
	return out, nil
}
