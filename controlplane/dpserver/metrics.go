package dpserver

import (
	"context"
	"slices"

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
	ps := make([]*resource.MeshMetric, 0, len(recs))
	for _, r := range recs {
		o, err := resource.Unmarshal(resource.KindMeshMetric, r.Spec)
		if err != nil {
			s.log.WarnContext(ctx, "skipping unreadable MeshMetric", "key", r.Key.String(), "error", err)
			continue
		}
		ps = append(ps, o.(*resource.MeshMetric))
	}
	conf, _, ok, err := policy.Dataplane[resource.MeshMetricConf](ps, dp)
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
