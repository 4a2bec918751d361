package dpserver

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ecsmesh/ecsmesh/api/dpapi"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/policy"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// metricsFor resolves the MeshMetric policies of dp's mesh that select it
// into the endpoint its agent serves; nil when none selects it or the
// merged policy has no Prometheus backend.
func (s *Server) metricsFor(ctx context.Context, dp *resource.Dataplane) (*dpapi.Metrics, error) {
	recs, err := s.cfg.Store.List(ctx, resource.KindMeshMetric, store.ListOptions{Mesh: dp.Mesh})
	if err != nil {
		return nil, s.internal(ctx, "listing mesh metrics", err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	ps := s.metricPolicies.get(dp.Mesh, recs, func(r store.Record) *resource.MeshMetric {
		o, err := resource.Unmarshal(resource.KindMeshMetric, r.Spec)
		if err != nil {
			s.log.WarnContext(ctx, "skipping unreadable MeshMetric", "key", r.Key.String(), "error", err)
			return nil
		}
		return o.(*resource.MeshMetric)
	})
	conf, ok, err := s.metricPolicies.resolve(dp, ps)
	if err != nil {
		return nil, s.internal(ctx, "resolving MeshMetric", err)
	}
	if !ok {
		return nil, nil
	}
	return MetricsConf(conf, dp), nil
}

// MetricsConf turns a merged MeshMetric configuration into what dp's
// agent serves; nil without a Prometheus backend.
func MetricsConf(c resource.MeshMetricConf, dp *resource.Dataplane) *dpapi.Metrics {
	i := slices.IndexFunc(c.Backends, func(b resource.MetricBackend) bool { return b.Type == resource.MetricPrometheus })
	if i < 0 {
		return nil
	}
	m := &dpapi.Metrics{Port: resource.DefaultMetricsPort, Path: resource.DefaultMetricsPath, AllEnvoy: true}
	if p := c.Backends[i].Prometheus; p != nil {
		if p.Port != 0 {
			m.Port = p.Port
		}
		if p.Path != "" {
			m.Path = p.Path
		}
	}
	if sc := c.Sidecar; sc != nil {
		m.IncludeUnused = sc.IncludeUnused != nil && *sc.IncludeUnused
		if pr := sc.Profiles; pr != nil {
			if len(pr.AppendProfiles) > 0 {
				m.AllEnvoy = slices.ContainsFunc(pr.AppendProfiles, func(p resource.MetricProfile) bool { return p.Name == resource.MetricProfileAll })
			}
			for _, x := range pr.Exclude {
				m.Exclude = append(m.Exclude, dpapi.MetricMatch{Type: x.Type, Match: x.Match})
			}
			for _, x := range pr.Include {
				m.Include = append(m.Include, dpapi.MetricMatch{Type: x.Type, Match: x.Match})
			}
		}
	}
	for _, a := range c.Applications {
		app := dpapi.MetricsApplication{Name: a.Name, Address: a.Address, Port: a.Port, Path: a.Path}
		if app.Address == "" {
			app.Address = "127.0.0.1"
		}
		if app.Path == "" {
			app.Path = resource.DefaultMetricsPath
		}
		m.Applications = append(m.Applications, app)
	}
	m.Labels = dpapi.MetricsLabels{Mesh: dp.Mesh, Workload: dp.Workload()}
	if svc := dp.Services(); len(svc) > 0 {
		m.Labels.Service = svc[0]
	}
	return m
}

// metricCache holds, per mesh, the decoded MeshMetric policies of the
// last listing, sorted by precedence, and the keys and versions they
// were decoded from.
type metricCache struct {
	mu     sync.Mutex
	byMesh map[string]metricEntry
}

type metricEntry struct {
	sig string
	ps  []*resource.MeshMetric
	// merged are the merged configurations by the names of the policies
	// that select a Dataplane (most Dataplanes share a few selections).
	merged map[string]resource.MeshMetricConf
}

// maxMerged bounds metricEntry.merged per mesh.
const maxMerged = 4096

// get returns the policies of recs, decoding them only when a record was
// added, removed or written since the last call for mesh. The slice is
// shared: callers must not change it.
func (c *metricCache) get(mesh string, recs []store.Record, decode func(store.Record) *resource.MeshMetric) []*resource.MeshMetric {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Key.String())
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(r.Version, 10))
		b.WriteByte(0)
	}
	sig := b.String()
	c.mu.Lock()
	e, ok := c.byMesh[mesh]
	c.mu.Unlock()
	if ok && e.sig == sig {
		return e.ps
	}
	ps := make([]*resource.MeshMetric, 0, len(recs))
	for _, r := range recs {
		if p := decode(r); p != nil {
			ps = append(ps, p)
		}
	}
	policy.Sort(ps)
	c.mu.Lock()
	if c.byMesh == nil {
		c.byMesh = map[string]metricEntry{}
	}
	c.byMesh[mesh] = metricEntry{sig: sig, ps: ps, merged: map[string]resource.MeshMetricConf{}}
	c.mu.Unlock()
	return ps
}

// resolve merges the policies of ps (from get) that select dp, reusing
// the merge of an earlier Dataplane with the same selection.
func (c *metricCache) resolve(dp *resource.Dataplane, ps []*resource.MeshMetric) (resource.MeshMetricConf, bool, error) {
	var key strings.Builder
	var sel []*resource.MeshMetric
	for _, p := range ps {
		if p.Mesh == dp.Mesh && policy.Selects(p.TopTargetRef(), dp) {
			sel = append(sel, p)
			key.WriteString(p.Name)
			key.WriteByte(0)
		}
	}
	if len(sel) == 0 {
		return resource.MeshMetricConf{}, false, nil
	}
	k := key.String()
	c.mu.Lock()
	e := c.byMesh[dp.Mesh]
	conf, hit := e.merged[k]
	c.mu.Unlock()
	if hit {
		return conf, true, nil
	}
	conf, _, ok, err := policy.Dataplane[resource.MeshMetricConf](sel, dp)
	if err != nil || !ok {
		return conf, ok, err
	}
	c.mu.Lock()
	if e, found := c.byMesh[dp.Mesh]; found && e.merged != nil && slicesEqual(e.ps, ps) {
		if len(e.merged) >= maxMerged {
			clear(e.merged)
		}
		e.merged[k] = conf
	}
	c.mu.Unlock()
	return conf, true, nil
}

// slicesEqual reports whether a and b are the same cached slice.
func slicesEqual(a, b []*resource.MeshMetric) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
