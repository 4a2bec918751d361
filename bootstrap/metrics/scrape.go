package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// source is one place a scrape reads.
type source struct {
	name string
	fams map[string]*dto.MetricFamily
	err  error
}

// ServeHTTP answers GET on the configured path with the merged exposition.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	v := s.conf
	s.mu.Unlock()
	if v == nil || r.URL.Path != v.m.Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "metrics: only GET", http.StatusMethodNotAllowed)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		http.Error(w, "metrics: too many concurrent scrapes", http.StatusServiceUnavailable)
		return
	}
	var buf bytes.Buffer
	s.Scrape(r.Context(), v, &buf)
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// Scrape writes one text exposition of every source of v to w; a source
// that fails is left out, named in a comment and counted.
func (s *Server) Scrape(ctx context.Context, v *view, w io.Writer) {
	srcs := s.gather(ctx, v)
	merged := map[string]*dto.MetricFamily{}
	labels := []*dto.LabelPair{
		{Name: proto.String("mesh"), Value: proto.String(v.m.Labels.Mesh)},
		{Name: proto.String("service"), Value: proto.String(v.m.Labels.Service)},
		{Name: proto.String("workload"), Value: proto.String(v.m.Labels.Workload)},
	}
	for _, src := range srcs {
		if src.err != nil {
			s.cfg.Logger.Debug("metrics source skipped", "source", src.name, "error", src.err)
			fmt.Fprintf(w, "# ecsmesh: source %s skipped: %s\n", src.name, oneLine(src.err.Error()))
			continue
		}
		for name, f := range src.fams {
			if src.name == "envoy" && !v.publishes(name) {
				continue
			}
			for _, m := range f.Metric {
				m.Label = relabel(m.Label, labels)
			}
			cur, ok := merged[name]
			switch {
			case !ok:
				merged[name] = f
			case cur.GetType() == f.GetType():
				cur.Metric = append(cur.Metric, f.Metric...)
			default:
				s.errs.WithLabelValues(src.name).Inc()
				fmt.Fprintf(w, "# ecsmesh: source %s: family %s skipped: its type %s differs from another source's %s\n", src.name, name, f.GetType(), cur.GetType())
			}
		}
	}
	names := make([]string, 0, len(merged))
	for n := range merged {
		names = append(names, n)
	}
	slices.Sort(names)
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, n := range names {
		if dropped := dedupe(merged[n]); dropped > 0 {
			fmt.Fprintf(w, "# ecsmesh: family %s: %d duplicate series dropped (two sources with the same labels)\n", n, dropped)
		}
		if err := enc.Encode(merged[n]); err != nil {
			fmt.Fprintf(w, "\n# ecsmesh: family %s not encoded: %s\n", n, oneLine(err.Error()))
		}
	}
}

// gather reads Envoy, the agent and every application, concurrently.
// The agent's own metrics are gathered last so that the failures of
// this scrape are counted in them.
func (s *Server) gather(ctx context.Context, v *view) []source {
	srcs := make([]source, 1+len(v.m.Applications))
	var wg sync.WaitGroup
	wg.Add(len(srcs))
	go func() {
		defer wg.Done()
		srcs[0].name = "envoy"
		port := s.cfg.AdminPort()
		if port <= 0 {
			srcs[0].err = fmt.Errorf("envoy is not running")
			return
		}
		u := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/stats/prometheus"
		if !v.m.IncludeUnused {
			u += "?usedonly"
		}
		srcs[0].fams, srcs[0].err = s.fetch(ctx, u)
	}()
	for i, a := range v.m.Applications {
		go func() {
			defer wg.Done()
			name := a.Name
			if name == "" {
				name = strconv.Itoa(a.Port)
			}
			srcs[i+1].name = "app/" + name
			srcs[i+1].fams, srcs[i+1].err = s.fetch(ctx, "http://"+net.JoinHostPort(a.Address, strconv.Itoa(a.Port))+a.Path)
		}()
	}
	wg.Wait()
	for _, src := range srcs {
		if src.err != nil {
			s.errs.WithLabelValues(src.name).Inc()
		}
	}
	own := source{name: "agent"}
	fams, err := s.cfg.Gatherer.Gather()
	if err != nil {
		own.err = err
	} else {
		own.fams = make(map[string]*dto.MetricFamily, len(fams))
		for _, f := range fams {
			own.fams[f.GetName()] = f
		}
	}
	if own.err != nil {
		s.errs.WithLabelValues(own.name).Inc()
	}
	return append(srcs, own)
}

// fetch reads one Prometheus text exposition, time-limited and
// size-capped.
func (s *Server) fetch(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > s.cfg.MaxBytes {
		return nil, fmt.Errorf("response exceeds %d bytes", s.cfg.MaxBytes)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	return fams, nil
}

// relabel adds add to a series' labels; a label it already has keeps its
// value as exported_<name> (exported_exported_<name>, ... if taken), as
// Prometheus does with honor_labels false.
func relabel(have, add []*dto.LabelPair) []*dto.LabelPair {
	taken := make(map[string]bool, len(have)+len(add))
	for _, l := range have {
		taken[l.GetName()] = true
	}
	out := make([]*dto.LabelPair, 0, len(have)+len(add))
	for _, l := range have {
		name := l.GetName()
		if slices.ContainsFunc(add, func(a *dto.LabelPair) bool { return a.GetName() == name }) {
			n := "exported_" + name
			for taken[n] {
				n = "exported_" + n
			}
			taken[n] = true
			l = &dto.LabelPair{Name: proto.String(n), Value: proto.String(l.GetValue())}
		}
		out = append(out, l)
	}
	out = append(out, add...)
	slices.SortFunc(out, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// dedupe keeps the first series of each label set (Prometheus refuses
// duplicates, e.g. two apps exporting process_open_fds) and returns how
// many it dropped.
func dedupe(f *dto.MetricFamily) int {
	seen := make(map[string]bool, len(f.Metric))
	kept := f.Metric[:0]
	var key strings.Builder
	for _, m := range f.Metric {
		key.Reset()
		for _, l := range m.Label {
			key.WriteString(l.GetName())
			key.WriteByte(0)
			key.WriteString(l.GetValue())
			key.WriteByte(0)
		}
		if k := key.String(); !seen[k] {
			seen[k] = true
			kept = append(kept, m)
		}
	}
	dropped := len(f.Metric) - len(kept)
	f.Metric = kept
	return dropped
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
