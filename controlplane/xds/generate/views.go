package generate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// views builds one View per distinct set of traffic policies that select
// some dataplane as a caller. Callers with the same set share a View, and
// a service no entry of the set applies to keeps the Mesh's own cluster
// and VIP listener, so that policies cost only what they change.
func (b *Builder) views(in *Input, m *Mesh, dps []*resource.Dataplane) error {
	clusters, vipls := map[string]memoEntry{}, map[string]memoEntry{}
	if !m.policies.empty() {
		sets := map[string]string{}
		for _, dp := range dps {
			key, set := m.policies.selection(dp)
			if key == "" {
				continue
			}
			if prev, ok := sets[key]; ok {
				if prev != set {
					return fmt.Errorf("generate: mesh %s: two policy selections hash to view %s; rename one of the policies", m.Name, key)
				}
				continue
			}
			sets[key] = set
			v, err := b.view(in, m, m.policies.toRules(dp), clusters, vipls)
			if err != nil {
				return err
			}
			m.views[key] = v
		}
	}
	b.viewClusters, b.viewVIPListeners = clusters, vipls
	return nil
}

func (b *Builder) view(in *Input, m *Mesh, r toRules, clusters, vipls map[string]memoEntry) (*View, error) {
	v := &View{
		ClusterByName:     make(map[string]*Resource, len(m.ServiceNames)),
		VIPListenerByName: make(map[string]*Resource, len(m.VIPListeners)),
		to:                map[string]*toConf{},
		vipService:        m.vipService,
	}
	for _, name := range m.ServiceNames {
		svc := m.Services[name]
		tc, err := r.resolveTo(name, svc.Protocol)
		if err != nil {
			return nil, err
		}
		c, l := m.ClusterByName[name], svc.vipListener
		if tc != nil {
			tc.destIDs = svc.SpiffeIDs
			vipKey := svc.vipKey
			if tc.Trace != nil {
				vipKey += "\x00" + strings.Join(svc.SpiffeIDs, ",")
			}
			v.to[name] = tc
			if c, err = memo(b.viewClusters, clusters, name+"\x00"+tc.key, svc.clusterKey, func() (*Resource, error) {
				return serviceCluster(svc, tc)
			}); err != nil {
				return nil, err
			}
			if l != nil {
				if l, err = memo(b.viewVIPListeners, vipls, name+"\x00"+tc.key, vipKey, func() (*Resource, error) {
					return outboundListener(svc.VIP.String(), in.VIPPort, name, svc.Protocol, m.FilterType, tc)
				}); err != nil {
					return nil, err
				}
			}
		}
		v.Clusters = append(v.Clusters, c)
		v.ClusterByName[name] = c
		if l != nil {
			v.VIPListeners = append(v.VIPListeners, l)
			v.VIPListenerByName[l.Name] = l
		}
	}
	for _, c := range m.subsets {
		v.Clusters = append(v.Clusters, c)
		v.ClusterByName[c.Name] = c
	}
	sort.Slice(v.VIPListeners, func(i, j int) bool { return v.VIPListeners[i].Name < v.VIPListeners[j].Name })
	return v, nil
}
