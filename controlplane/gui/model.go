package gui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
	"github.com/ecsmesh/ecsmesh/controlplane/xds"
)

// dataplaneRow is one Dataplane as the lists show it.
type dataplaneRow struct {
	Mesh, Name, Address string
	Services            []string
	Labels              []label
	// Status is online, offline or never connected; Since when it became so.
	Status  string
	Online  bool
	Since   time.Time
	Replica string
	Cluster string
	// SPIFFEID and Role come from the Dataplane's owner (IAM login).
	SPIFFEID, Role string
	// Ready and Inbounds count the inbounds reported ready.
	Ready, Inbounds int
}

type label struct{ Key, Value string }

// serviceRow is one service of one mesh.
type serviceRow struct {
	Mesh, Name, Protocol string
	VIP                  string
	Hostnames            []string
	Ready, Total         int
	Policies             []policyRef
	Permissions          []permission
}

// policyRef links to one policy.
type policyRef struct{ Kind, Plural, Mesh, Name string }

// permission is one MeshTrafficPermission rule that applies to a service.
type permission struct {
	Policy          policyRef
	Action, Match   string
	SpiffeID, Scope string
}

// snapshot is everything the list pages read, from one pass over the
// store.
type snapshot struct {
	Meshes     []string
	Dataplanes []dataplaneRow
	Services   []serviceRow
	Policies   []policyRow
}

// cachedDataplane is a decoded Dataplane record, kept while its store
// version stays the same: every page re-reads the store, but decodes only
// what changed.
type cachedDataplane struct {
	version  int64
	row      dataplaneRow
	inbounds []inboundSummary
}

type inboundSummary struct {
	service, protocol string
	ready             bool
}

// dataplaneList reads every Dataplane record from the store (as the
// resource manager does) and decodes the new or changed ones.
func (g *GUI) dataplaneList(ctx context.Context) ([]*cachedDataplane, error) {
	recs, err := g.o.Store.List(ctx, resource.KindDataplane, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("gui: listing dataplanes: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	next := make(map[store.Key]*cachedDataplane, len(recs))
	out := make([]*cachedDataplane, 0, len(recs))
	for _, r := range recs {
		c := g.dpCache[r.Key]
		if c == nil || c.version != r.Version {
			obj, err := resource.Unmarshal(resource.KindDataplane, r.Spec)
			if err != nil {
				return nil, fmt.Errorf("gui: reading %s: %w", r.Key, err)
			}
			c = newCachedDataplane(r, obj.(*resource.Dataplane))
		}
		next[r.Key] = c
		out = append(out, c)
	}
	g.dpCache = next
	return out, nil
}

func newCachedDataplane(r store.Record, dp *resource.Dataplane) *cachedDataplane {
	row := dataplaneRow{Mesh: r.Mesh, Name: r.Name, Address: dp.Networking.Address, Labels: sortedLabels(dp.Labels),
		Cluster: dp.Labels[resource.LabelECSCluster], Status: "never connected", Inbounds: len(dp.Networking.Inbound)}
	if dp.Owner != nil {
		row.SPIFFEID, row.Role = dp.Owner.SPIFFEID, dp.Owner.RoleARN
	}
	c := &cachedDataplane{version: r.Version}
	for i := range dp.Networking.Inbound {
		in := &dp.Networking.Inbound[i]
		if in.Ready() {
			row.Ready++
		}
		name := in.Service()
		if name == "" {
			continue
		}
		if !containsString(row.Services, name) {
			row.Services = append(row.Services, name)
		}
		c.inbounds = append(c.inbounds, inboundSummary{service: name, protocol: in.Protocol(), ready: in.Ready()})
	}
	c.row = row
	return c
}

// policyRow is one resource of a policy kind (every kind but Dataplane).
type policyRow struct {
	Ref     policyRef
	Targets []string
	Labels  []label
	obj     resource.Object
}

func sortedLabels(m map[string]string) []label {
	out := make([]label, 0, len(m))
	for k, v := range m {
		out = append(out, label{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// load reads the store through the same internals the admin API and the
// DNS reconciler use: the resource manager, the VIP records, the session
// records and the hostname rules.
func (g *GUI) load(ctx context.Context) (*snapshot, error) {
	s := &snapshot{}
	meshes, err := g.o.Manager.List(ctx, resource.KindMesh, "")
	if err != nil {
		return nil, err
	}
	for _, m := range meshes {
		s.Meshes = append(s.Meshes, m.GetMeta().Name)
	}
	sessions, err := xds.Sessions(ctx, g.o.Store)
	if err != nil {
		return nil, err
	}
	dps, err := g.dataplaneList(ctx)
	if err != nil {
		return nil, err
	}
	type svcKey struct{ mesh, name string }
	svcs := map[svcKey]*serviceRow{}
	for _, c := range dps {
		row := c.row
		if sess, ok := sessions[store.Key{Mesh: row.Mesh, Name: row.Name}]; ok {
			row.Online, row.Replica, row.Since = sess.Online, sess.Replica, sess.ConnectedAt
			row.Status = "online"
			if !sess.Online {
				row.Status = "offline"
				if !sess.DisconnectedAt.IsZero() {
					row.Since = sess.DisconnectedAt
				}
			}
		}
		for _, in := range c.inbounds {
			sv := svcs[svcKey{row.Mesh, in.service}]
			if sv == nil {
				sv = &serviceRow{Mesh: row.Mesh, Name: in.service, Protocol: in.protocol}
				svcs[svcKey{row.Mesh, in.service}] = sv
			}
			sv.Total++
			if in.ready && row.Online {
				sv.Ready++
			}
		}
		s.Dataplanes = append(s.Dataplanes, row)
	}
	if err := g.loadPolicies(ctx, s); err != nil {
		return nil, err
	}
	vips, err := vip.ListAll(ctx, g.o.Store)
	if err != nil {
		return nil, err
	}
	gens, err := dns.Generators(ctx, g.o.Store)
	if err != nil {
		return nil, err
	}
	for _, sv := range svcs {
		if a, ok := vips[vip.ServiceKey{Mesh: sv.Mesh, Service: sv.Name}]; ok && a != (netip.Addr{}) {
			sv.VIP = a.String()
		}
		names, _ := resource.Hostnames(g.o.Domain, g.o.ZoneID, resource.Service{Mesh: sv.Mesh, Name: sv.Name, Protocol: sv.Protocol}, gens)
		sv.Hostnames = names
		g.applyPolicies(s, sv)
		s.Services = append(s.Services, *sv)
	}
	sort.Slice(s.Services, func(i, j int) bool {
		if s.Services[i].Mesh != s.Services[j].Mesh {
			return s.Services[i].Mesh < s.Services[j].Mesh
		}
		return s.Services[i].Name < s.Services[j].Name
	})
	return s, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// loadPolicies lists every kind but Dataplane, with where each applies.
func (g *GUI) loadPolicies(ctx context.Context, s *snapshot) error {
	for _, k := range resource.Kinds() {
		if k.Name == resource.KindDataplane {
			continue
		}
		objs, err := g.o.Manager.List(ctx, k.Name, "")
		if err != nil {
			return err
		}
		for _, obj := range objs {
			m := obj.GetMeta()
			s.Policies = append(s.Policies, policyRow{
				Ref: policyRef{Kind: k.Name, Plural: k.Plural, Mesh: m.Mesh, Name: m.Name}, Targets: targets(obj),
				Labels: sortedLabels(m.Labels), obj: obj,
			})
		}
	}
	return nil
}

// targets describes where a resource applies: every targetRef in its
// spec, with the path it sits at, and any selector.
func targets(obj resource.Object) []string {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	var doc map[string]any
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if (k == "targetRef" || k == "selector") && isObject(v[k]) {
					out = append(out, strings.TrimPrefix(path+"."+k, ".")+": "+describeRef(v[k].(map[string]any)))
					continue
				}
				walk(path+"."+k, v[k])
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("", doc["spec"])
	if len(out) == 0 {
		switch obj.GetMeta().Type {
		case resource.KindMesh:
			out = append(out, "the mesh itself")
		case resource.KindMeshTrafficPermission, resource.KindMeshIdentity:
			out = append(out, "every dataplane of the mesh")
		default:
			out = append(out, "the whole "+scopeWord(obj.GetMeta().Mesh))
		}
	}
	return out
}

func scopeWord(mesh string) string {
	if mesh == "" {
		return "control plane"
	}
	return "mesh"
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

func describeRef(m map[string]any) string {
	b, _ := json.Marshal(m)
	var parts []string
	if k, ok := m["kind"].(string); ok {
		parts = append(parts, k)
	}
	if n, ok := m["name"].(string); ok {
		parts = append(parts, n)
	}
	if len(parts) == 0 || len(m) > len(parts) {
		return string(b)
	}
	return strings.Join(parts, " ")
}

// applyPolicies fills the service's policies (those naming it or the
// whole mesh) and its permissions (the MeshTrafficPermission rules of
// those).
func (g *GUI) applyPolicies(s *snapshot, sv *serviceRow) {
	for i := range s.Policies {
		p := &s.Policies[i]
		if p.Ref.Mesh != sv.Mesh || p.Ref.Kind == resource.KindMesh {
			continue
		}
		if !namesService(p.Targets, sv.Name) {
			continue
		}
		sv.Policies = append(sv.Policies, p.Ref)
		if mtp, ok := p.obj.(*resource.MeshTrafficPermission); ok {
			scope := "mesh"
			if mtp.Spec.TargetRef != nil && mtp.Spec.TargetRef.Kind == resource.TargetMeshService {
				scope = "service"
			}
			for _, r := range mtp.Spec.From {
				sv.Permissions = append(sv.Permissions, permission{Policy: p.Ref, Action: r.Action,
					Match: r.SpiffeID.Type, SpiffeID: r.SpiffeID.Value, Scope: scope})
			}
		}
	}
}

// namesService reports whether a policy's targetRefs name the service,
// by MeshService name or kuma.io/service tag, or the whole mesh (kind
// Mesh, or no targetRef).
func namesService(ts []string, service string) bool {
	for _, t := range ts {
		_, ref, _ := strings.Cut(t, ": ")
		if ref == resource.TargetMesh || strings.HasPrefix(t, "the whole mesh") || strings.HasPrefix(t, "every dataplane") ||
			ref == resource.TargetMeshService+" "+service || strings.Contains(ref, `"kuma.io/service":"`+jsonEscape(service)+`"`) {
			return true
		}
	}
	return false
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// meshSummary is one mesh on the overview.
type meshSummary struct {
	Name                   string
	Services               int
	Online, Offline, Never int
	CAExpiry               time.Time
	CASubject              string
	CARoots                int
	CAError                string
}

func (g *GUI) meshSummaries(ctx context.Context, s *snapshot) []meshSummary {
	idx := map[string]*meshSummary{}
	out := make([]meshSummary, len(s.Meshes))
	for i, m := range s.Meshes {
		out[i].Name = m
		idx[m] = &out[i]
		st, ok, err := ca.ReadRootStatus(ctx, g.o.Store, m)
		switch {
		case err != nil:
			out[i].CAError = err.Error()
		case ok:
			out[i].CAExpiry, out[i].CASubject, out[i].CARoots = st.NotAfter, st.Subject, st.Roots
		}
	}
	for _, sv := range s.Services {
		if m := idx[sv.Mesh]; m != nil {
			m.Services++
		}
	}
	for _, d := range s.Dataplanes {
		m := idx[d.Mesh]
		if m == nil {
			continue
		}
		switch d.Status {
		case "online":
			m.Online++
		case "offline":
			m.Offline++
		default:
			m.Never++
		}
	}
	return out
}
