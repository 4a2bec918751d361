package gui

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/xds"
)

type overviewData struct {
	Meshes               []meshSummary
	Services, Dataplanes int
	Online, Offline      int
	DNS                  *dns.Status
	Leading              bool
	Refusals             []counter
	RefusalsSince        time.Time
	DNSCounters          []counter
}

func (g *GUI) overview(w http.ResponseWriter, r *http.Request) {
	s, err := g.load(r.Context())
	if err != nil {
		g.failErr(w, r, err)
		return
	}
	d := overviewData{Meshes: g.meshSummaries(r.Context(), s), Services: len(s.Services), Dataplanes: len(s.Dataplanes)}
	for _, dp := range s.Dataplanes {
		if dp.Online {
			d.Online++
		} else {
			d.Offline++
		}
	}
	if g.o.DNS != nil {
		d.DNS = g.o.DNS()
		d.Leading = d.DNS != nil && d.DNS.Passes > 0
	}
	d.Refusals, d.DNSCounters = g.counters()
	delta, since := g.window.observe(g.o.Now(), counterValues(d.Refusals))
	for i := range d.Refusals {
		d.Refusals[i].LastHour = delta[d.Refusals[i].Name+"{"+d.Refusals[i].Labels+"}"]
	}
	d.RefusalsSince = since
	g.render(w, r, http.StatusOK, "overview", "Overview", d)
}

var serviceCols = [][2]string{{"mesh", "Mesh"}, {"name", "Service"}, {"vip", "VIP"}, {"protocol", "Protocol"}, {"ready", "Ready / total"}}

func (g *GUI) services(w http.ResponseWriter, r *http.Request) {
	s, err := g.load(r.Context())
	if err != nil {
		g.failErr(w, r, err)
		return
	}
	p := paginate("/gui/services", s.Services, parseQuery(r), serviceCols,
		func(sv serviceRow, col string) string {
			switch col {
			case "mesh":
				return sv.Mesh + "\x00" + sv.Name
			case "vip":
				return sortableIP(sv.VIP)
			case "protocol":
				return sv.Protocol
			case "ready":
				return fmt.Sprintf("%09d/%09d", sv.Ready, sv.Total)
			}
			return sv.Name
		},
		func(sv serviceRow) string {
			return sv.Mesh + " " + sv.Name + " " + sv.VIP + " " + strings.Join(sv.Hostnames, " ")
		},
		func(sv serviceRow) string { return sv.Mesh })
	g.render(w, r, http.StatusOK, "services", "Services", p)
}

// sortableIP pads IPv4 octets so that addresses sort numerically.
func sortableIP(s string) string {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return s
	}
	for i, p := range parts {
		parts[i] = fmt.Sprintf("%03s", p)
	}
	return strings.Join(parts, ".")
}

var dataplaneCols = [][2]string{{"mesh", "Mesh"}, {"name", "Dataplane"}, {"service", "Service"}, {"status", "Status"},
	{"since", "Since"}, {"replica", "CP replica"}, {"cluster", "ECS cluster"}, {"address", "Address"}}

func (g *GUI) dataplanes(w http.ResponseWriter, r *http.Request) {
	s, err := g.load(r.Context())
	if err != nil {
		g.failErr(w, r, err)
		return
	}
	p := paginate("/gui/dataplanes", s.Dataplanes, parseQuery(r), dataplaneCols,
		func(d dataplaneRow, col string) string {
			switch col {
			case "mesh":
				return d.Mesh + "\x00" + d.Name
			case "service":
				return strings.Join(d.Services, ",")
			case "status":
				return d.Status
			case "since":
				return d.Since.UTC().Format("2006-01-02T15:04:05.000000000")
			case "replica":
				return d.Replica
			case "cluster":
				return d.Cluster
			case "address":
				return sortableIP(d.Address)
			}
			return d.Name
		},
		func(d dataplaneRow) string {
			return d.Mesh + " " + d.Name + " " + strings.Join(d.Services, " ") + " " + d.Address + " " + d.Status + " " + d.Cluster
		},
		func(d dataplaneRow) string { return d.Mesh })
	g.render(w, r, http.StatusOK, "dataplanes", "Dataplanes", p)
}

type dataplaneData struct {
	Row       dataplaneRow
	YAML      string
	Inspect   *inspectSummary
	InspectOK bool
	Error     string
}

func (g *GUI) dataplane(w http.ResponseWriter, r *http.Request) {
	mesh, name := r.PathValue("mesh"), r.PathValue("name")
	obj, _, err := g.o.Manager.Get(r.Context(), resource.KindDataplane, mesh, name)
	if err != nil {
		if p := problem.From(err); p.Status == http.StatusNotFound {
			g.fail(w, r, http.StatusNotFound, "no such dataplane", fmt.Sprintf("mesh %q has no Dataplane %q", mesh, name))
			return
		}
		g.failErr(w, r, err)
		return
	}
	sessions, err := xds.Sessions(r.Context(), g.o.Store)
	if err != nil {
		g.failErr(w, r, err)
		return
	}
	dp := obj.(*resource.Dataplane)
	row := dataplaneRow{Mesh: mesh, Name: name, Address: dp.Networking.Address, Labels: sortedLabels(dp.Labels),
		Cluster: dp.Labels[resource.LabelECSCluster], Status: "never connected"}
	for i := range dp.Networking.Inbound {
		if sv := dp.Networking.Inbound[i].Service(); sv != "" && !containsString(row.Services, sv) {
			row.Services = append(row.Services, sv)
		}
	}
	if dp.Owner != nil {
		row.SPIFFEID, row.Role = dp.Owner.SPIFFEID, dp.Owner.RoleARN
	}
	if sess, ok := sessions[store.Key{Mesh: mesh, Name: name}]; ok {
		row.Online, row.Replica, row.Since, row.Status = sess.Online, sess.Replica, sess.ConnectedAt, "online"
		if !sess.Online {
			row.Status = "offline"
			if !sess.DisconnectedAt.IsZero() {
				row.Since = sess.DisconnectedAt
			}
		}
	}
	d := dataplaneData{Row: row}
	if y, err := yaml.Marshal(obj); err == nil {
		d.YAML = string(y)
	}
	if g.o.Inspector == nil {
		d.Error = "the xDS server is not running on this replica"
	} else if out, err := g.o.Inspector.InspectDataplane(r.Context(), mesh, name); err != nil {
		d.Error = err.Error()
	} else if sum, err := summarizeInspect(out); err != nil {
		d.Error = err.Error()
	} else {
		d.Inspect, d.InspectOK = sum, true
	}
	g.render(w, r, http.StatusOK, "dataplane", "Dataplane "+name, d)
}

var policyCols = [][2]string{{"kind", "Kind"}, {"mesh", "Mesh"}, {"name", "Name"}}

func (g *GUI) policies(w http.ResponseWriter, r *http.Request) {
	s := &snapshot{}
	if err := g.loadPolicies(r.Context(), s); err != nil {
		g.failErr(w, r, err)
		return
	}
	p := paginate("/gui/policies", s.Policies, parseQuery(r), policyCols,
		func(p policyRow, col string) string {
			switch col {
			case "kind":
				return p.Ref.Kind + "\x00" + p.Ref.Mesh + "\x00" + p.Ref.Name
			case "mesh":
				return p.Ref.Mesh + "\x00" + p.Ref.Name
			}
			return p.Ref.Name
		},
		func(p policyRow) string {
			return p.Ref.Kind + " " + p.Ref.Mesh + " " + p.Ref.Name + " " + strings.Join(p.Targets, " ")
		},
		func(p policyRow) string { return p.Ref.Mesh })
	g.render(w, r, http.StatusOK, "policies", "Policies", p)
}

type policyData struct {
	Ref     policyRef
	Targets []string
	YAML    string
	Version int64
}

func (g *GUI) policy(w http.ResponseWriter, r *http.Request) {
	k, ok := resource.LookupKind(r.PathValue("kind"))
	if !ok || k.Name == resource.KindDataplane {
		g.fail(w, r, http.StatusNotFound, "unknown resource kind", "pick a resource from the Policies page")
		return
	}
	mesh := r.URL.Query().Get("mesh")
	if k.Scope == resource.ScopeGlobal {
		mesh = ""
	}
	obj, version, err := g.o.Manager.Get(r.Context(), k.Name, mesh, r.PathValue("name"))
	if err != nil {
		if problem.From(err).Status == http.StatusNotFound {
			g.fail(w, r, http.StatusNotFound, "no such resource", fmt.Sprintf("%s %q (mesh %q) is not stored", k.Name, r.PathValue("name"), mesh))
			return
		}
		g.failErr(w, r, err)
		return
	}
	y, err := yaml.Marshal(obj)
	if err != nil {
		g.failErr(w, r, err)
		return
	}
	m := obj.GetMeta()
	g.render(w, r, http.StatusOK, "policy", k.Name+" "+m.Name, policyData{
		Ref: policyRef{Kind: k.Name, Plural: k.Plural, Mesh: m.Mesh, Name: m.Name}, Targets: targets(obj), YAML: string(y), Version: version,
	})
}

// counter is one labelled counter value.
type counter struct {
	Name, Labels string
	Value        float64
	// LastHour is the growth in the overview's window.
	LastHour float64
}

// counters reads the refusal and DNS counters from the CP's registry
// (totals since this replica started).
func (g *GUI) counters() (refusals, dnsCounters []counter) {
	if g.o.Metrics == nil {
		return nil, nil
	}
	mfs, err := g.o.Metrics.Gather()
	if err != nil {
		g.o.Logger.Warn("gui: gathering metrics", "error", err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		isRefusal := name == "ecsmesh_logins_total" || name == "ecsmesh_xds_streams_refused_total"
		isDNS := strings.HasPrefix(name, "ecsmesh_dns_") || strings.HasPrefix(name, "ecsmesh_route53_")
		if !isRefusal && !isDNS {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			refused := name != "ecsmesh_logins_total"
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
				if l.GetName() == "result" && l.GetValue() == "refused" {
					refused = true
				}
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			c := counter{Name: name, Labels: strings.Join(labels, ", "), Value: v}
			switch {
			case isRefusal && refused:
				refusals = append(refusals, c)
			case isDNS:
				dnsCounters = append(dnsCounters, c)
			}
		}
	}
	sort.Slice(refusals, func(i, j int) bool {
		if refusals[i].Value != refusals[j].Value {
			return refusals[i].Value > refusals[j].Value
		}
		return refusals[i].Name+refusals[i].Labels < refusals[j].Name+refusals[j].Labels
	})
	return refusals, dnsCounters
}
