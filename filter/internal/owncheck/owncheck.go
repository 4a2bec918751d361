// Package owncheck checks, for the adapters' fuzz tests, that a request
// leaves a filter with exactly the filter's own headers the core decides.
package owncheck

import (
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/filter"
)

// Check checks the request headers an adapter let through: every
// header the filter strips (filter.Compiled.StripNames) must appear exactly
// as the core decides for the same input, once with the decided value or
// not at all. prop is destination.address outbound and the peer's URI SAN
// inbound; sent are the incoming headers (lower-case names).
func Check(config, prop string, sent, got [][2]string) error {
	c, err := filter.Parse([]byte(config))
	if err != nil {
		return err
	}
	req := filter.Request{Now: time.Now().Unix()}
	if c.Inbound() {
		req.PeerURISAN = prop
	} else {
		req.Destination = prop
	}
	for _, kv := range sent {
		switch {
		case kv[0] == ":authority" && req.Authority == "":
			req.Authority = kv[1]
		case kv[0] == filter.HeaderIdentity && req.IdentityToken == "":
			req.IdentityToken = kv[1]
		}
	}
	var d filter.Decision
	c.Decide(&req, &d)
	if d.Status != 0 {
		return fmt.Errorf("owncheck: the request was let through, the core answers %d", d.Status)
	}
	for _, name := range c.StripNames() {
		want := ""
		for _, h := range d.Headers() {
			if h.Name == name {
				want = h.Value
			}
		}
		var vals []string
		for _, kv := range got {
			if kv[0] == name {
				vals = append(vals, kv[1])
			}
		}
		if want == "" && len(vals) > 0 || want != "" && (len(vals) != 1 || vals[0] != want) {
			return fmt.Errorf("owncheck: header %s = %q after the filter, want %q (sent %q)", name, vals, want, sent)
		}
	}
	return nil
}
