package filter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/ecsmesh/ecsmesh/filter/internal/filtertest"
)

// simulate runs one request through the core the way the adapters do.
func simulate(c *filter.Compiled, tc filtertest.Case) (status int, body string, hdrs [][2]string, events filter.Counter, reason string) {
	req := filter.Request{Destination: tc.Destination, PeerURISAN: tc.PeerURISAN, Now: time.Now().Unix()}
	for _, h := range tc.Headers {
		switch {
		case h[0] == ":authority":
			req.Authority = h[1]
		case h[0] == ":method":
			req.Method = h[1]
		case h[0] == ":path":
			req.Path = h[1]
		case h[0] == filter.HeaderIdentity && req.IdentityToken == "":
			req.IdentityToken = h[1]
		}
		if !c.Strip(h[0]) {
			hdrs = append(hdrs, h)
		}
	}
	var d filter.Decision
	c.Decide(&req, &d)
	if d.Status != 0 {
		return d.Status, d.Body, nil, d.Events, d.Reason
	}
	for _, h := range d.Headers() {
		hdrs = append(hdrs, [2]string{h.Name, h.Value})
	}
	return 0, "", hdrs, d.Events, d.Reason
}

func TestTable(t *testing.T) {
	keys := filtertest.NewKeys()
	for _, s := range keys.Suites() {
		c, err := filter.Parse([]byte(s.Config))
		if err != nil {
			t.Fatalf("%s: Parse: %v", s.Name, err)
		}
		for _, tc := range s.Cases {
			t.Run(s.Name+"/"+tc.Name, func(t *testing.T) {
				status, body, hdrs, events, reason := simulate(c, tc)
				if status != tc.WantStatus || body != tc.WantBody {
					t.Fatalf("got %d %q, want %d %q", status, body, tc.WantStatus, tc.WantBody)
				}
				if tc.WantReason != "" && reason != tc.WantReason {
					t.Errorf("reason %q, want %q", reason, tc.WantReason)
				}
				for name, want := range tc.WantHeaders {
					var got []string
					for _, h := range hdrs {
						if h[0] == name {
							got = append(got, h[1])
						}
					}
					if want == "" && len(got) > 0 || want != "" && (len(got) != 1 || got[0] != want) {
						t.Errorf("header %s = %q, want %q", name, got, want)
					}
				}
				var names []string
				for _, ctr := range filter.Counters() {
					if events&ctr != 0 {
						names = append(names, ctr.Name())
					}
				}
				if strings.Join(names, ",") != strings.Join(tc.WantCounters, ",") {
					t.Errorf("counters %v, want %v", names, tc.WantCounters)
				}
			})
		}
	}
}

func TestBadConfigs(t *testing.T) {
	for _, bc := range filtertest.BadConfigs() {
		t.Run(bc.Name, func(t *testing.T) {
			_, err := filter.Parse([]byte(bc.Config))
			if err == nil {
				t.Fatal("Parse accepted a bad config")
			}
			if !strings.Contains(err.Error(), bc.WantLog) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line containing %q", err, bc.WantLog)
			}
		})
	}
}
