package envoygo

import (
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// Factory builds the filter of one request (api.StreamFilterFactory).
func Factory(cfg interface{}, callbacks api.FilterCallbackHandler) api.StreamFilter {
	c, ok := cfg.(*Config)
	if !ok {
		// Unreachable with Parser; refuse rather than pass traffic unchecked.
		return &stream{callbacks: callbacks}
	}
	return &stream{config: c, callbacks: callbacks}
}

// stream is the filter of one request.
type stream struct {
	api.PassThroughStreamFilter
	config    *Config
	callbacks api.FilterCallbackHandler
	req       filter.Request
	decision  filter.Decision
}

// DecodeHeaders strips, decides and applies the decision.
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
	s.req = filter.Request{Authority: headers.Host()}
	if c.NeedsIdentityToken() {
		s.req.IdentityToken, _ = headers.Get(filter.HeaderIdentity)
	}
	var stripBuf [8]string
	strip := stripBuf[:0]
	headers.Range(func(name, _ string) bool {
		if c.Strip(name) {
			strip = append(strip, name)
		}
		return true
	})
	for _, name := range strip {
		headers.Del(name)
	}
	if c.Inbound() {
		s.req.PeerURISAN = s.property(filter.PropertyPeerURISAN)
	} else {
		s.req.Destination = s.property(filter.PropertyDestination)
	}
	if c.NeedsClock(&s.req) {
		s.req.Now = time.Now().Unix()
	}
	d := &s.decision
	c.Decide(&s.req, d)
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
