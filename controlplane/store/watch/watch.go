// Package watch fans store events out to subscribers without ever blocking
// the writer: a subscriber that falls behind is sent a resync marker (an
// Event with Op 0) and must List again.
package watch

import (
	"context"
	"sync"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Buffer is how many events a subscriber may lag before it is told to resync.
const Buffer = 1024

// Hub is a set of subscribers. The zero value is not usable; call NewHub.
type Hub struct {
	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed by Close, ends the subscribers' goroutines
	subs   map[*sub]struct{}
}

type sub struct {
	ch     chan store.Event
	lagged bool
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{done: make(chan struct{}), subs: map[*sub]struct{}{}} }

// Subscribe returns a channel of every event published from now on; it is
// closed when ctx ends or the hub closes.
func (h *Hub) Subscribe(ctx context.Context) <-chan store.Event {
	s := &sub{ch: make(chan store.Event, Buffer)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.ch)
		return s.ch
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-h.done: // Close already closed s.ch
			return
		}
		h.mu.Lock()
		if _, ok := h.subs[s]; ok {
			delete(h.subs, s)
			close(s.ch)
		}
		h.mu.Unlock()
	}()
	return s.ch
}

// Publish sends e to every subscriber without blocking.
func (h *Hub) Publish(e store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.lagged {
			// Try to deliver the resync marker first.
			select {
			case s.ch <- store.Event{}:
				s.lagged = false
			default:
				continue
			}
		}
		select {
		case s.ch <- e:
		default:
			s.lagged = true
		}
	}
}

// Close closes every subscriber's channel.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
}
