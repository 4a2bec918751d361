package xds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// worldSource is what a world is loaded from and built with: the store,
// the CA (trust bundles), the token issuer (JWKS, JWT-SVID issuer) and the
// generator's settings.
type worldSource struct {
	store            store.Store
	ca               CertificateAuthority
	tokens           Tokens
	log              *slog.Logger
	domain           string
	vipPort          int
	wasmPath, goPath string
	autoReachable    bool
}

func newWorldSource(o Options, log *slog.Logger) *worldSource {
	return &worldSource{store: o.Store, ca: o.CA, tokens: o.Tokens, log: log, domain: o.Domain, vipPort: o.VIPPort, wasmPath: o.WasmPath, goPath: o.GoPath, autoReachable: o.AutoReachable}
}

// world is the decoded store state the generator reads, loaded from src.
// Owned by the run loop.
type world struct {
	src        *worldSource
	meshes     map[string]*resource.Mesh
	dps        map[string]map[string]*dpEntry
	identities map[string]map[string]*resource.MeshIdentity
	mtps       map[string]map[string]*resource.MeshTrafficPermission
	policies   map[string]map[string]resource.Policy // by mesh, then "<kind>/<name>"
	vips       map[string]map[string]netip.Addr
	gens       map[string]*resource.HostnameGenerator
	sessions   map[string]map[string]*sessionEntry
	replicas   map[string]string // live replica -> its session
	bundles    map[string][]byte
	jwks       map[string]json.RawMessage // by mesh: its JWT-SVID keys only
	builders   map[string]*generate.Builder
}

type dpEntry struct {
	dp  *resource.Dataplane
	rec store.Record
}

type sessionEntry struct {
	doc sessionDoc
	rec store.Record
}

func newWorld(src *worldSource) *world {
	return &world{
		src: src, meshes: map[string]*resource.Mesh{}, dps: map[string]map[string]*dpEntry{},
		identities: map[string]map[string]*resource.MeshIdentity{}, mtps: map[string]map[string]*resource.MeshTrafficPermission{},
		policies: map[string]map[string]resource.Policy{},
		vips:     map[string]map[string]netip.Addr{}, gens: map[string]*resource.HostnameGenerator{},
		sessions: map[string]map[string]*sessionEntry{}, replicas: map[string]string{}, bundles: map[string][]byte{},
		jwks: map[string]json.RawMessage{}, builders: map[string]*generate.Builder{},
	}
}

func inner[V any](m map[string]map[string]V, mesh string) map[string]V {
	if m[mesh] == nil {
		m[mesh] = map[string]V{}
	}
	return m[mesh]
}

// allMeshes is the dirty set meaning "every mesh".
const allMeshes = "*"

// load reads everything from the store.
func (w *world) load(ctx context.Context) error {
	kinds := []string{resource.KindMesh, resource.KindDataplane, resource.KindMeshIdentity, resource.KindMeshTrafficPermission, resource.KindHostnameGenerator, KindSession, KindReplica}
	for _, kind := range append(kinds, generate.PolicyKinds...) {
		recs, err := w.src.store.List(ctx, kind, store.ListOptions{})
		if err != nil {
			return fmt.Errorf("xds: listing %s: %w", kind, err)
		}
		for _, r := range recs {
			if err := w.put(r); err != nil {
				w.src.log.Warn("xds: skipping unreadable record", "key", r.Key.String(), "error", err)
			}
		}
	}
	for name := range w.meshes {
		if err := w.loadVIPs(ctx, name); err != nil {
			return err
		}
		w.loadBundle(ctx, name)
	}
	w.loadJWKS(ctx)
	return nil
}

func (w *world) loadVIPs(ctx context.Context, mesh string) error {
	v, err := vip.List(ctx, w.src.store, mesh)
	if err != nil {
		return fmt.Errorf("xds: %w", err)
	}
	w.vips[mesh] = v
	return nil
}

func (w *world) loadBundle(ctx context.Context, mesh string) {
	b, err := w.src.ca.Bundle(ctx, mesh)
	if err != nil {
		w.src.log.Error("xds: trust bundle unavailable", "mesh", mesh, "error", err)
		return
	}
	w.bundles[mesh] = b.PEM
}

// loadJWKS reloads every mesh's JWKS (retired keys leave it when their
// verification window ends, which changes nothing in the store).
func (w *world) loadJWKS(ctx context.Context) {
	for mesh := range w.jwks {
		if w.meshes[mesh] == nil {
			delete(w.jwks, mesh)
		}
	}
	for mesh := range w.meshes {
		w.loadMeshJWKS(ctx, mesh)
	}
}

// loadMeshJWKS loads the key set of the mesh's JWT-SVIDs, which its
// inbound filters verify tokens with: no other mesh's keys, no
// dataplane-token keys.
func (w *world) loadMeshJWKS(ctx context.Context, mesh string) {
	b, err := w.src.tokens.MeshJWKS(ctx, mesh)
	if err != nil {
		w.src.log.Error("xds: JWKS unavailable", "mesh", mesh, "error", err)
		return
	}
	w.jwks[mesh] = b
}

// put decodes one record into w.
func (w *world) put(r store.Record) error {
	switch r.Kind {
	case KindSession:
		d, err := decodeSession(r.Spec)
		if err != nil {
			return err
		}
		inner(w.sessions, r.Mesh)[r.Name] = &sessionEntry{doc: d, rec: r}
		return nil
	case KindReplica:
		var d replicaDoc
		_ = json.Unmarshal(r.Spec, &d) // unreadable: live, without a session
		w.replicas[r.Name] = d.Session
		return nil
	}
	obj, err := resource.Unmarshal(r.Kind, r.Spec)
	if err != nil {
		return err
	}
	resource.SetTimes(obj, r.CreatedAt, r.ModifiedAt)
	switch o := obj.(type) {
	case *resource.Mesh:
		w.meshes[r.Name] = o
	case *resource.Dataplane:
		inner(w.dps, r.Mesh)[r.Name] = &dpEntry{dp: o, rec: r}
	case *resource.MeshIdentity:
		inner(w.identities, r.Mesh)[r.Name] = o
	case *resource.MeshTrafficPermission:
		inner(w.mtps, r.Mesh)[r.Name] = o
	case *resource.HostnameGenerator:
		w.gens[r.Name] = o
	case resource.Policy:
		if isTrafficPolicy(r.Kind) {
			inner(w.policies, r.Mesh)[r.Kind+"/"+r.Name] = o
		}
	}
	return nil
}

func (w *world) remove(k store.Key) {
	switch k.Kind {
	case resource.KindMesh:
		delete(w.meshes, k.Name)
	case resource.KindDataplane:
		delete(w.dps[k.Mesh], k.Name)
	case resource.KindMeshIdentity:
		delete(w.identities[k.Mesh], k.Name)
	case resource.KindMeshTrafficPermission:
		delete(w.mtps[k.Mesh], k.Name)
	case resource.KindHostnameGenerator:
		delete(w.gens, k.Name)
	case KindSession:
		delete(w.sessions[k.Mesh], k.Name)
	case KindReplica:
		delete(w.replicas, k.Name)
	default:
		delete(w.policies[k.Mesh], k.Kind+"/"+k.Name)
	}
}

// isTrafficPolicy reports whether the generator applies policies of kind.
func isTrafficPolicy(kind string) bool { return slices.Contains(generate.PolicyKinds, kind) }

// apply folds one store event into w and returns the meshes to rebuild.
func (w *world) apply(ctx context.Context, ev store.Event) (map[string]bool, error) {
	k := ev.Key
	if isTrafficPolicy(k.Kind) {
		if err := w.refresh(ctx, k); err != nil {
			return nil, err
		}
		return map[string]bool{k.Mesh: true}, nil
	}
	switch k.Kind {
	case resource.KindMesh, resource.KindDataplane, resource.KindMeshIdentity, resource.KindMeshTrafficPermission, KindSession:
		if err := w.refresh(ctx, k); err != nil {
			return nil, err
		}
		mesh := k.Mesh
		if k.Kind == resource.KindMesh {
			mesh = k.Name
			if _, ok := w.meshes[mesh]; ok {
				if err := w.loadVIPs(ctx, mesh); err != nil {
					return nil, err
				}
				w.loadBundle(ctx, mesh)
				w.loadMeshJWKS(ctx, mesh)
			} else {
				delete(w.jwks, mesh)
			}
		}
		return map[string]bool{mesh: true}, nil
	case resource.KindHostnameGenerator, KindReplica:
		if err := w.refresh(ctx, k); err != nil {
			return nil, err
		}
		return map[string]bool{allMeshes: true}, nil
	case vip.KindServiceVIP:
		if _, ok := w.meshes[k.Mesh]; ok {
			if err := w.loadVIPs(ctx, k.Mesh); err != nil {
				return nil, err
			}
		}
		return map[string]bool{k.Mesh: true}, nil
	case ca.KindCA:
		if _, ok := w.meshes[k.Mesh]; ok {
			w.loadBundle(ctx, k.Mesh)
		}
		return map[string]bool{k.Mesh: true}, nil
	case token.KindSigningKey:
		if token.Purpose(k.Name) != token.KeyJWTSVID || w.meshes[k.Mesh] == nil {
			return nil, nil
		}
		w.loadMeshJWKS(ctx, k.Mesh)
		return map[string]bool{k.Mesh: true}, nil
	}
	return nil, nil
}

func (w *world) refresh(ctx context.Context, k store.Key) error {
	r, err := w.src.store.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		w.remove(k)
		return nil
	}
	if err != nil {
		return fmt.Errorf("xds: reading %s: %w", k, err)
	}
	if err := w.put(r); err != nil {
		w.src.log.Warn("xds: skipping unreadable record", "key", k.String(), "error", err)
	}
	return nil
}

// refreshReplicas re-lists live replicas (records expire silently) and
// reports whether the set changed.
func (w *world) refreshReplicas(ctx context.Context) bool {
	live, err := listReplicas(ctx, w.src.store)
	if err != nil {
		w.src.log.Error("xds: listing replicas", "error", err)
		return false
	}
	changed := len(live) != len(w.replicas)
	for name, sess := range live {
		if cur, ok := w.replicas[name]; !ok || cur != sess {
			changed = true
		}
	}
	w.replicas = live
	return changed
}

// offlineBootstrapped lists the bootstrap-created Dataplanes no replica
// holds a live stream of: the candidates of liveness's sweep.
func (w *world) offlineBootstrapped() []store.Key {
	var out []store.Key
	for mesh, dps := range w.dps {
		for name, e := range dps {
			if e.dp.Labels[resource.LabelOrigin] == resource.OriginBootstrap && !w.online(mesh, name) {
				out = append(out, store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name})
			}
		}
	}
	return out
}

// online reports whether the dataplane has a live stream on any replica.
func (w *world) online(mesh, name string) bool {
	if se := w.sessions[mesh][name]; se != nil {
		for r, e := range se.doc.Replicas {
			if e.live(r, w.replicas) {
				return true
			}
		}
	}
	return false
}

// input assembles the generator input of a mesh.
func (w *world) input(mesh string) *generate.Input {
	in := &generate.Input{
		Mesh: w.meshes[mesh], Online: map[string]bool{}, VIPs: w.vips[mesh], Domain: w.src.domain, VIPPort: w.src.vipPort,
		JWKS: w.jwks[mesh], JWTIssuer: w.src.tokens.JWTSVIDIssuer(), TrustBundlePEM: w.bundles[mesh], WasmPath: w.src.wasmPath, GoPath: w.src.goPath,
		AutoReachable: w.src.autoReachable,
	}
	for name, e := range w.dps[mesh] {
		in.Dataplanes = append(in.Dataplanes, e.dp)
		if w.online(mesh, name) {
			in.Online[name] = true
		}
	}
	for _, names := range slices.Sorted(maps.Keys(w.identities[mesh])) {
		in.Identities = append(in.Identities, w.identities[mesh][names])
	}
	for _, names := range slices.Sorted(maps.Keys(w.mtps[mesh])) {
		in.Permissions = append(in.Permissions, w.mtps[mesh][names])
	}
	for _, key := range slices.Sorted(maps.Keys(w.policies[mesh])) {
		in.Policies.Add(w.policies[mesh][key])
	}
	for _, name := range slices.Sorted(maps.Keys(w.gens)) {
		in.Generators = append(in.Generators, w.gens[name])
	}
	return in
}

// bindOutbounds reports whether a dataplane gets every VIP listener.
func (w *world) bindOutbounds(mesh, name string, dp *resource.Dataplane) bool {
	if dp.Labels[resource.LabelBindOutbounds] == "true" {
		return true
	}
	if se := w.sessions[mesh][name]; se != nil {
		for _, e := range se.doc.Replicas {
			if e.BindOutbounds {
				return true
			}
		}
	}
	return false
}

// build generates a mesh and its nodes with the mesh's builder.
func (w *world) build(mesh string) (*generate.Mesh, map[string]*generate.Node, error) {
	b := w.builders[mesh]
	if b == nil {
		b = generate.NewBuilder()
		w.builders[mesh] = b
	}
	m, err := b.Mesh(w.input(mesh))
	if err != nil {
		return nil, nil, err
	}
	nodes := make(map[string]*generate.Node, len(w.dps[mesh]))
	b.BeginNodes()
	for name, e := range w.dps[mesh] {
		n, err := b.Node(m, e.dp, w.bindOutbounds(mesh, name, e.dp))
		if err != nil {
			w.src.log.Error("xds: cannot generate dataplane config", "mesh", mesh, "dataplane", name, "error", err)
			continue
		}
		nodes[name] = n
	}
	b.EndNodes()
	return m, nodes, nil
}
