package xds

import (
	"context"
	"sync"

	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// stream is one authenticated ADS stream.
type stream struct {
	id     int64
	claims token.DataplaneClaims
	nodeID string // set by the first request, fixed afterwards
	bind   bool   // the node asked for every VIP listener
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// close ends the stream with cause, once.
func (st *stream) close(c *closeCause) { st.cancel(c) }

// streamRegistry holds this replica's open streams, by stream ID and, once
// bound to their node, by node ID. Its lock is taken after accessTable's
// and before liveness's.
type streamRegistry struct {
	mu     sync.Mutex
	byID   map[int64]*stream
	byNode map[string]map[int64]*stream
}

func newStreamRegistry() *streamRegistry {
	return &streamRegistry{byID: map[int64]*stream{}, byNode: map[string]map[int64]*stream{}}
}

// add registers an opened stream under its ID.
func (r *streamRegistry) add(st *stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[st.id] = st
}

// get returns the stream with ID id, or nil.
func (r *streamRegistry) get(id int64) *stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// bind records st as a stream of node nodeID; bind is whether it asked for
// every VIP listener.
func (r *streamRegistry) bind(st *stream, nodeID string, bind bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.nodeID, st.bind = nodeID, bind
	if r.byNode[nodeID] == nil {
		r.byNode[nodeID] = map[int64]*stream{}
	}
	r.byNode[nodeID][st.id] = st
}

// remove forgets the stream with ID id and reports whether it was its
// node's last stream on this replica.
func (r *streamRegistry) remove(id int64) (st *stream, last bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st = r.byID[id]
	delete(r.byID, id)
	if st != nil && st.nodeID != "" {
		delete(r.byNode[st.nodeID], id)
		if len(r.byNode[st.nodeID]) == 0 {
			delete(r.byNode, st.nodeID)
			last = true
		}
	}
	return st, last
}

// withNode runs f, under the registry's lock, with whether this replica
// holds a stream of node id and whether any of them asked for every VIP
// listener.
func (r *streamRegistry) withNode(id string, f func(held, bind bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bind := false
	for _, st := range r.byNode[id] {
		bind = bind || st.bind
	}
	f(len(r.byNode[id]) > 0, bind)
}

// forNode runs f, under the registry's lock, on every stream of node id.
func (r *streamRegistry) forNode(id string, f func(st *stream)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.byNode[id] {
		f(st)
	}
}

// forEach runs f, under the registry's lock, on every bound stream.
func (r *streamRegistry) forEach(f func(nodeID string, st *stream)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, streams := range r.byNode {
		for _, st := range streams {
			f(id, st)
		}
	}
}

// nodeIDs lists the nodes this replica holds a stream of.
func (r *streamRegistry) nodeIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.byNode))
	for id := range r.byNode {
		ids = append(ids, id)
	}
	return ids
}

// counts reports the open streams and the nodes they are bound to.
func (r *streamRegistry) counts() (streams, nodes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID), len(r.byNode)
}
