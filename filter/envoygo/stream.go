package envoygo

import (
	"fmt"
	"sync"
	"time"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"

	"github.com/ecsmesh/ecsmesh/filter"
)

// streams recycles the filters of finished requests (OnDestroy), so that a
// request allocates nothing in steady state.
var streams = sync.Pool{New: func() any { return new(stream) }}

// Factory builds the filter of one request (api.StreamFilterFactory).
func Factory(cfg interface{}, callbacks api.FilterCallbackHandler) api.StreamFilter {
	s := streams.Get().(*stream)
	s.callbacks = callbacks
	if c, ok := cfg.(*Config); ok {
		s.config = c
	} // else: unreachable with Parser; DecodeHeaders refuses rather than pass traffic unchecked.
	return s
}

// OnDestroy returns the filter to the pool: Envoy calls nothing on it
// afterwards.
func (s *stream) OnDestroy(api.DestroyReason) {
	*s = stream{}
	streams.Put(s)
}

// stream is the filter of one request.
type stream struct {
	api.PassThroughStreamFilter
	config    *Config
	callbacks api.FilterCallbackHandler
	req       filter.Request
	decision  filter.Decision
}

// DecodeHeaders decides, then removes the headers the filter owns and sets
// the decided ones, or answers locally. It reads one property and, inbound
// without a peer certificate, x-ecsmesh-identity; Host() is a view of the
// header map Envoy already holds, so outbound reads it up front.
func (s *stream) DecodeHeaders(headers api.RequestHeaderMap, _ bool) (status api.StatusType) {
	defer func() {
		if r := recover(); r != nil {
			// Fail closed: a bug must not let a request through unchecked.
			s.callbacks.Log(api.Error, fmt.Sprintf("ecsmesh: filter: panic on request: %v", r))
			s.reply(500, "ecsmesh: internal error", "ecsmesh_internal_error")
			status = api.LocalReply
		}
	}()
	if s.config == nil {
		s.reply(500, "ecsmesh: filter has no configuration", "ecsmesh_no_config")
		return api.LocalReply
	}
	c := s.config.compiled
	req, d := &s.req, &s.decision
	*req = filter.Request{}
	if c.Inbound() {
		req.PeerURISAN = s.property(filter.PropertyPeerURISAN)
		if req.PeerURISAN == "" && c.NeedsIdentityToken() {
			req.IdentityToken, _ = headers.Get(filter.HeaderIdentity)
		}
		if c.NeedsRequestLine() {
			req.Method, req.Path = headers.Method(), headers.Path()
		}
	} else {
		req.Destination = s.property(filter.PropertyDestination)
		req.Authority = headers.Host()
	}
	if c.NeedsClock(req) {
		req.Now = time.Now().Unix()
	}
	c.Decide(req, d)
	for _, ctr := range s.config.counters {
		if d.Events&ctr.bit != 0 {
			ctr.metric.Increment(1)
		}
	}
	if d.Status != 0 {
		details := "ecsmesh_denied"
		if d.Status == 503 {
			details = "ecsmesh_no_route"
		}
		s.reply(d.Status, d.Body, details)
		return api.LocalReply
	}
	for _, name := range c.StripNames() {
		if !d.Sets(name) { // Set replaces every value
			headers.Del(name)
		}
	}
	for _, h := range d.Headers() {
		headers.Set(h.Name, h.Value)
	}
	if !c.Inbound() {
		// The route picks its cluster from x-ecsmesh-cluster (cluster_header).
		s.callbacks.ClearRouteCache()
	}
	return api.Continue
}

func (s *stream) property(key string) string {
	v, err := s.callbacks.GetProperty(key)
	if err != nil {
		return ""
	}
	return v
}

func (s *stream) reply(status int, body, details string) {
	s.callbacks.DecoderFilterCallbacks().SendLocalReply(status, body,
		map[string][]string{"content-type": {"text/plain; charset=utf-8"}}, -1, details)
}
