package devdemo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ecsmesh/ecsmesh/filter"
)

// Result is what the demo observed, for the end-to-end test to assert.
type Result struct {
	// Dataplanes maps an agent (AgentSpec.Name) to its Dataplane's name.
	Dataplanes map[string]string
	// Records are the zone's records after the agents joined.
	Records []string
	// Received maps an agent to what its stand-in Envoy holds.
	Received map[string]*Received
	// Routed is web → redis through the .wasm (outbound).
	Routed *Reply
	// Split is web → backend under the MeshHTTPRoute.
	Split *Split
	// AdminRefused and RootAllowed are web's GET /admin and GET / arriving
	// at backend under the L7 permission.
	AdminRefused, RootAllowed *Reply
	// Allowed and Refused are the call arriving at redis (inbound), before
	// and after the MeshTrafficPermission.
	Allowed, Refused *Reply
	// ForgedStatus and ForgedReason are the forged login's answer.
	ForgedStatus int
	ForgedReason string
}

// MeshYAML is the mesh the demo applies.
const MeshYAML = "type: Mesh\nname: default\n"

// DenyWebToRedis refuses web's calls to redis.
const DenyWebToRedis = `type: MeshTrafficPermission
mesh: default
name: deny-web-to-redis
spec:
  targetRef: {kind: MeshService, name: redis}
  from:
  - spiffeID: {type: Exact, value: "spiffe://default.mesh.local/workload/web"}
    action: Deny
`

// Run runs every step, printing progress; agents are left running for the
// caller to stop (StopAgents).
func (d *Demo) Run(ctx context.Context) (*Result, error) {
	res := &Result{Dataplanes: map[string]string{}, Received: map[string]*Received{}}

	d.Progress("Mesh: apply `type: Mesh, name: default` (mTLS always on, built-in CA)")
	if err := d.Apply(ctx, MeshYAML); err != nil {
		return res, err
	}
	// A second run starts from the same state: drop the permission the
	// first one applied (absent is fine).
	_, _, _ = d.admin.do(ctx, "DELETE", "/meshes/default/meshtrafficpermissions/deny-web-to-redis", "")

	d.Progress("Sidecars: start ecsmesh-dp for web, redis, backend v1 and v2 (task metadata, task-role credentials, IAM login)")
	for i, spec := range Agents {
		a, err := d.StartAgent(ctx, spec, i)
		if err != nil {
			return res, err
		}
		d.Detail("%s agent started, work dir %s", spec.Name, a.Dir)
	}
	if err := d.wait(ctx, "every login", func() (bool, error) {
		dps, err := d.Dataplanes(ctx)
		if err != nil {
			return false, err
		}
		for _, spec := range Agents {
			if _, ok := dps[spec.Name]; !ok {
				return false, nil
			}
		}
		for _, spec := range Agents {
			res.Dataplanes[spec.Name] = dps[spec.Name].Name
		}
		return true, nil
	}); err != nil {
		return res, err
	}
	for _, spec := range Agents {
		arn, tags, err := d.RoleTags(ctx, spec.Name, "ecsmesh-demo-"+spec.Service)
		if err != nil {
			return res, err
		}
		d.Detail("login accepted: %s", arn)
		d.Detail("  role tags %s → Dataplane default/%s", fmtTags(tags), res.Dataplanes[spec.Name])
	}

	d.Progress("DNS: VIPs allocated, Route53 private zone records written (plan → one TXT ownership claim per domain → batched apply)")
	if err := d.wait(ctx, "Route53 A records for web, redis and backend", func() (bool, error) {
		recs, err := d.Records(ctx)
		if err != nil {
			return false, err
		}
		res.Records = recs
		return hasA(recs, "web.mesh.local") && hasA(recs, "redis.mesh.local") && hasA(recs, "backend.mesh.local"), nil
	}); err != nil {
		return res, err
	}
	for _, r := range res.Records {
		d.Detail("%s", r)
	}

	d.Progress("xDS: what each sidecar's Envoy (stand-in ADS client) received and ACKed")
	for _, spec := range Agents {
		a := d.agents[spec.Name]
		if err := d.wait(ctx, spec.Name+"'s xDS config", func() (bool, error) {
			r, err := ReadReceived(a.Dir)
			if err != nil {
				return false, nil
			}
			res.Received[spec.Name] = r
			out, hasOut := r.Filter("ecsmesh-outbound")
			// The route to redis gets its JWT-SVID once redis's identity
			// is known, which may be an update after the first config.
			return slices.Contains(r.Clusters, "redis") && slices.Contains(r.Clusters, "web") && hasOut &&
				len(r.Endpoints["redis"]) > 0 && len(r.Endpoints["web"]) > 0 && routeHasToken(out, "redis"), nil
		}); err != nil {
			return res, err
		}
		r := res.Received[spec.Name]
		if spec.Service == "backend" {
			// The same shape as redis's: one line each.
			d.Detail("%s: %d listeners, %d clusters, SDS secrets %s, ECDS filters %s", spec.Name, len(r.Listeners), len(r.Clusters),
				strings.Join(r.Secrets, ", "), strings.Join(keys(r.Filters), ", "))
			continue
		}
		d.Detail("%s: listeners %s", spec.Name, strings.Join(r.Listeners, ", "))
		d.Detail("%s: clusters %s; endpoints redis=%v web=%v backend=%v", spec.Name, strings.Join(r.Clusters, ", "), r.Endpoints["redis"], r.Endpoints["web"], r.Endpoints["backend"])
		d.Detail("%s: SDS secrets %s; ECDS filters %s", spec.Name, strings.Join(r.Secrets, ", "), strings.Join(keys(r.Filters), ", "))
	}
	outCfg, _ := res.Received["web"].Filter("ecsmesh-outbound")
	d.Detail("web's outbound filter config (ECDS): %s", clip(outCfg, 240))

	d.Progress("Request: web → redis.mesh.local:8080 through build/ecsmesh-filter.wasm under wazero, with the config the CP delivered")
	vip := aValue(res.Records, "redis.mesh.local")
	routed, err := Outbound(ctx, d.o.WasmFile, outCfg, vip+":8080", "redis.mesh.local:8080")
	if err != nil {
		return res, err
	}
	res.Routed = routed
	d.Detail("web outbound: dialed %s:8080 → x-ecsmesh-cluster: %s, x-ecsmesh-identity: %s", vip, routed.Headers[filter.HeaderCluster], clip(routed.Headers[filter.HeaderIdentity], 40))
	d.Detail("web outbound: spoofed x-ecsmesh-peer-id from the app stripped: %q", routed.Headers[filter.HeaderPeerID])
	inCfg, _ := res.Received["redis"].Filter("ecsmesh-inbound")
	webID := "spiffe://default.mesh.local/workload/web"
	allowed, err := Inbound(ctx, d.o.WasmFile, inCfg, webID, "redis.mesh.local:8080")
	if err != nil {
		return res, err
	}
	res.Allowed = allowed
	d.Detail("redis inbound: mTLS peer %s → allowed (AllowMesh); x-ecsmesh-peer-id: %s, x-forwarded-client-cert: %s",
		webID, allowed.Headers[filter.HeaderPeerID], allowed.Headers[filter.HeaderXFCC])

	split, err := d.RunSplit(ctx, res.Records)
	res.Split = split
	if err != nil {
		return res, err
	}

	if err := d.l7Step(ctx, res); err != nil {
		return res, err
	}

	d.Progress("Permission: apply MeshTrafficPermission deny-web-to-redis; redis's sidecar gets it over ECDS, no restart")
	if err := d.Apply(ctx, DenyWebToRedis); err != nil {
		return res, err
	}
	if err := d.wait(ctx, "redis's inbound filter to deny web", func() (bool, error) {
		r, err := ReadReceived(d.agents["redis"].Dir)
		if err != nil {
			return false, nil
		}
		cfg, _ := r.Filter("ecsmesh-inbound")
		if !strings.Contains(cfg, `"Deny"`) || !strings.Contains(cfg, webID) {
			return false, nil
		}
		inCfg = cfg
		return true, nil
	}); err != nil {
		return res, err
	}
	refused, err := Inbound(ctx, d.o.WasmFile, inCfg, webID, "redis.mesh.local:8080")
	if err != nil {
		return res, err
	}
	res.Refused = refused
	d.Detail("redis inbound: %d %q", refused.Status, refused.Body)

	d.Progress("Forged login: web's real credentials, signed for another server ID")
	status, p, err := d.ForgedLogin(ctx, res.Dataplanes["web"])
	if err != nil {
		return res, err
	}
	res.ForgedStatus = status
	if p != nil {
		res.ForgedReason = p.Reason
		d.Detail("refused: HTTP %d, reason %s: %s", status, p.Reason, p.Details)
	} else {
		d.Detail("answer: HTTP %d", status)
	}
	return res, nil
}

func hasA(recs []string, name string) bool { return aValue(recs, name) != "" }

// aValue returns the A record's value for name.
func aValue(recs []string, name string) string {
	for _, r := range recs {
		f := strings.Fields(r)
		if len(f) == 3 && f[0] == name && f[1] == "A" {
			return f[2]
		}
	}
	return ""
}

func fmtTags(tags map[string]string) string {
	var parts []string
	for _, k := range keys(tags) {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ", ")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}

// routeHasToken reports whether the outbound filter configuration cfg
// carries a JWT-SVID on its route to cluster.
func routeHasToken(cfg, cluster string) bool {
	var c filter.Config
	if json.Unmarshal([]byte(cfg), &c) != nil {
		return false
	}
	for _, r := range c.Routes {
		if r.Cluster == cluster && r.Token != "" {
			return true
		}
	}
	return false
}

// DenyAdminOnBackend refuses every caller's /admin on backend (an L7 rule)
// and leaves the rest to the mesh default.
const DenyAdminOnBackend = `type: MeshTrafficPermission
mesh: default
name: backend-no-admin
spec:
  targetRef: {kind: MeshService, name: backend}
  from:
  - spiffeID: {type: Prefix, value: "spiffe://default.mesh.local/"}
    action: Deny
    rules:
    - match:
        paths: [{type: Prefix, value: /admin}]
`

// l7Step applies DenyAdminOnBackend and sends web's GET /admin and GET /
// through backend's inbound filter (the .wasm, the config delivered).
func (d *Demo) l7Step(ctx context.Context, res *Result) error {
	d.Progress("L7 permission: apply backend-no-admin (deny /admin to every caller); backend's sidecar gets it over ECDS")
	if err := d.Apply(ctx, DenyAdminOnBackend); err != nil {
		return err
	}
	var cfg string
	if err := d.wait(ctx, "backend's inbound filter to carry the rule", func() (bool, error) {
		r, err := ReadReceived(d.agents["backend-v1"].Dir)
		if err != nil {
			return false, nil
		}
		c, _ := r.Filter("ecsmesh-inbound")
		cfg = c
		return strings.Contains(c, `"rules"`) && strings.Contains(c, "/admin"), nil
	}); err != nil {
		return err
	}
	webID := "spiffe://default.mesh.local/workload/web"
	var err error
	if res.AdminRefused, err = InboundRequest(ctx, d.o.WasmFile, cfg, webID, "backend.mesh.local:8080", "GET", "/admin/users"); err != nil {
		return err
	}
	if res.RootAllowed, err = InboundRequest(ctx, d.o.WasmFile, cfg, webID, "backend.mesh.local:8080", "GET", "/"); err != nil {
		return err
	}
	d.Detail("backend inbound: GET /admin/users from web → %d %q", res.AdminRefused.Status, res.AdminRefused.Body)
	d.Detail("backend inbound: GET / from web → passes (x-ecsmesh-peer-id: %s)", res.RootAllowed.Headers[filter.HeaderPeerID])
	return nil
}
