// Package admin is the control plane's admin HTTP API: resources CRUD at
// Kuma's paths, /ready, /metrics, the OIDC discovery documents, and the
// per-dataplane xDS view.
//
//	GET    /meshes                               list meshes
//	GET    /meshes/{mesh}                        one mesh
//	PUT    /meshes/{mesh}                        create or replace
//	DELETE /meshes/{mesh}
//	GET    /meshes/{mesh}/{kinds}                list (e.g. dataplanes)
//	GET|PUT|DELETE /meshes/{mesh}/{kinds}/{name}
//	GET    /{kinds}                              all meshes / global kinds
//	GET|PUT|DELETE /{kinds}/{name}               global kinds
//	POST   /apply                                many documents, all or nothing
//	GET    /meshes/{mesh}/dataplanes/{name}/xds  current xDS resources
//	POST   /meshes/{mesh}/rotate/ca              new root; old one trusted until its leaves expire
//	POST   /meshes/{mesh}/rotate/signing-keys    new token and JWT-SVID keys; old ones verify until their tokens expire
//	POST   /meshes/{mesh}/dataplanes/{name}/revoke  end the Dataplane's tokens and streams now
//	GET    /gui/...                              the read-only web GUI (package gui)
//
// When a token is configured every resource route requires
// "Authorization: Bearer <token>", compared in constant time; /ready,
// /metrics and /.well-known/* stay open. Without a token (loopback only)
// every request must name a loopback Host and carry no foreign Origin.
// Writes must carry a JSON or YAML body type (see guard).
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// MaxBodyBytes caps request bodies (1 MiB).
const MaxBodyBytes = 1 << 20

// Inspector renders a dataplane's current xDS resources as JSON.
type Inspector interface {
	InspectDataplane(ctx context.Context, mesh, name string) ([]byte, error)
}

// Rotator rotates a mesh's keys (ecsmesh extension: Kuma rotates through
// the Mesh's CA backends, which ecsmesh does not have).
type Rotator interface {
	// RotateCA makes a new root the issuer; the old root stays in the
	// trust bundle until every leaf it signed has expired.
	RotateCA(ctx context.Context, mesh string) error
	// RotateSigningKeys makes new keys sign dataplane tokens and
	// JWT-SVIDs and returns their key IDs; the old keys keep verifying
	// until the tokens they signed expire.
	RotateSigningKeys(ctx context.Context, mesh string) ([]string, error)
}

// Options configure the admin API.
type Options struct {
	Manager *manager.Manager
	Logger  *slog.Logger
	// Token, when set, is required on resource routes.
	Token string
	// Ready reports whether the CP serves; nil means always ready.
	Ready func(context.Context) error
	// Metrics serves /metrics (promhttp); nil: 404.
	Metrics http.Handler
	// WellKnown serves /.well-known/*; nil: 404.
	WellKnown http.Handler
	// Inspector serves the xDS view; nil: 503.
	Inspector Inspector
	// Rotator rotates keys; nil: 503.
	Rotator Rotator
	// GUI serves /gui/ (package gui), behind the same guard; it checks
	// the token itself (bearer header or its login session). nil: 404.
	GUI http.Handler
}

// Handler returns the admin API.
func Handler(o Options) http.Handler {
	h := &handler{o: o}
	if h.o.Logger == nil {
		h.o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Token != "" {
		sum := sha256.Sum256([]byte(o.Token))
		h.tokenSum = sum[:]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", h.ready)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.WellKnown != nil {
		mux.Handle("GET /.well-known/jwks.json", o.WellKnown)
		mux.Handle("GET /.well-known/openid-configuration", o.WellKnown)
	}
	mux.HandleFunc("GET /{$}", h.authed(h.index))
	mux.HandleFunc("POST /apply", h.authed(h.apply))
	mux.HandleFunc("GET /meshes", h.authed(h.listMeshes))
	mux.HandleFunc("GET /meshes/{mesh}", h.authed(h.getMesh))
	mux.HandleFunc("PUT /meshes/{mesh}", h.authed(h.putMesh))
	mux.HandleFunc("DELETE /meshes/{mesh}", h.authed(h.deleteMesh))
	mux.HandleFunc("GET /meshes/{mesh}/{kind}", h.authed(h.listInMesh))
	mux.HandleFunc("GET /meshes/{mesh}/{kind}/{name}", h.authed(h.getInMesh))
	mux.HandleFunc("PUT /meshes/{mesh}/{kind}/{name}", h.authed(h.putInMesh))
	mux.HandleFunc("DELETE /meshes/{mesh}/{kind}/{name}", h.authed(h.deleteInMesh))
	mux.HandleFunc("GET /meshes/{mesh}/dataplanes/{name}/xds", h.authed(h.inspect))
	mux.HandleFunc("POST /meshes/{mesh}/rotate/{what}", h.authed(h.rotate))
	mux.HandleFunc("POST /meshes/{mesh}/dataplanes/{name}/revoke", h.authed(h.revoke))
	mux.HandleFunc("GET /{kind}", h.authed(h.listGlobal))
	mux.HandleFunc("GET /{kind}/{name}", h.authed(h.getGlobal))
	mux.HandleFunc("PUT /{kind}/{name}", h.authed(h.putGlobal))
	mux.HandleFunc("DELETE /{kind}/{name}", h.authed(h.deleteGlobal))
	if o.GUI == nil {
		return guard(o.Token == "", mux)
	}
	// /gui/ overlaps /{kind}/{name}: route it before the mux.
	return guard(o.Token == "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/gui":
			http.Redirect(w, r, "/gui/", http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, "/gui/"):
			o.GUI.ServeHTTP(w, r)
		default:
			mux.ServeHTTP(w, r)
		}
	}))
}

type handler struct {
	o        Options
	tokenSum []byte
}

func (h *handler) authed(next http.HandlerFunc) http.HandlerFunc {
	if h.tokenSum == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], h.tokenSum) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ecsmesh-admin"`)
			problem.Write(w, problem.New(http.StatusUnauthorized, "unauthenticated", "admin API token required",
				"send Authorization: Bearer <ECSMESH_ADMIN_TOKEN> (ecsmesh-cp reads it from ECSMESH_ADMIN_TOKEN)"))
			return
		}
		next(w, r)
	}
}

func (h *handler) ready(w http.ResponseWriter, r *http.Request) {
	if h.o.Ready != nil {
		if err := h.o.Ready(r.Context()); err != nil {
			problem.Write(w, problem.New(http.StatusServiceUnavailable, "not_ready", "control plane not ready", err.Error()))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ready\n")
}

func (h *handler) index(w http.ResponseWriter, _ *http.Request) {
	kinds := []string{}
	for _, k := range resource.Kinds() {
		kinds = append(kinds, k.Plural)
	}
	writeJSON(w, http.StatusOK, map[string]any{"product": "ecsmesh", "kinds": kinds})
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.From(err)
	if p.Status >= 500 {
		h.o.Logger.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	problem.Write(w, p)
}

// kindOf resolves a path segment; scope says where it must live.
func kindOf(segment string, inMesh bool) (resource.KindInfo, error) {
	k, ok := resource.LookupKind(segment)
	if !ok {
		return k, problem.Newf(http.StatusNotFound, "unknown_kind", "unknown resource kind",
			"%q is not a kind; use one of %s", segment, strings.Join(resource.KindNames(), ", "))
	}
	if inMesh && k.Scope == resource.ScopeGlobal {
		return k, problem.Newf(http.StatusNotFound, "global_kind", "kind is global", "%s is not mesh-scoped; use /%s", k.Name, k.Plural)
	}
	return k, nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, kind, mesh string) {
	objs, err := h.o.Manager.List(r.Context(), kind, mesh)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if objs == nil {
		objs = []resource.Object{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(objs), "items": objs, "next": nil})
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, kind, mesh, name string) {
	obj, version, err := h.o.Manager.Get(r.Context(), kind, mesh, name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(version, 10)))
	writeJSON(w, http.StatusOK, obj)
}

func (h *handler) put(w http.ResponseWriter, r *http.Request, kind resource.KindInfo, mesh, name string) {
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	obj, warns, err := resource.DecodeOne(withDefaults(body, kind.Name, mesh, name))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	m := obj.GetMeta()
	if m.Type != kind.Name || m.Name != name || m.Mesh != mesh {
		h.fail(w, r, problem.Newf(http.StatusBadRequest, "path_mismatch", "the body does not match the path",
			"the path names %s %q (mesh %q) but the body is %s %q (mesh %q)", kind.Name, name, mesh, m.Type, m.Name, m.Mesh))
		return
	}
	_, _, getErr := h.o.Manager.Get(r.Context(), kind.Name, mesh, name)
	stored, err := h.o.Manager.Apply(r.Context(), []resource.Object{obj})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, warn := range warns {
		w.Header().Add("Warning", `299 - `+strconv.Quote(warn))
	}
	status := http.StatusOK
	if getErr != nil {
		status = http.StatusCreated
	}
	writeJSON(w, status, stored[0])
}

func (h *handler) del(w http.ResponseWriter, r *http.Request, kind, mesh, name string) {
	if err := h.o.Manager.Delete(r.Context(), kind, mesh, name); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (h *handler) listMeshes(w http.ResponseWriter, r *http.Request) {
	h.list(w, r, resource.KindMesh, "")
}
func (h *handler) getMesh(w http.ResponseWriter, r *http.Request) {
	h.get(w, r, resource.KindMesh, "", r.PathValue("mesh"))
}
func (h *handler) putMesh(w http.ResponseWriter, r *http.Request) {
	k, _ := resource.LookupKind(resource.KindMesh)
	h.put(w, r, k, "", r.PathValue("mesh"))
}
func (h *handler) deleteMesh(w http.ResponseWriter, r *http.Request) {
	h.del(w, r, resource.KindMesh, "", r.PathValue("mesh"))
}

func (h *handler) listInMesh(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r.PathValue("kind"), true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.list(w, r, k.Name, r.PathValue("mesh"))
}

func (h *handler) getInMesh(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r.PathValue("kind"), true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.get(w, r, k.Name, r.PathValue("mesh"), r.PathValue("name"))
}

func (h *handler) putInMesh(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r.PathValue("kind"), true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.put(w, r, k, r.PathValue("mesh"), r.PathValue("name"))
}

func (h *handler) deleteInMesh(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r.PathValue("kind"), true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.del(w, r, k.Name, r.PathValue("mesh"), r.PathValue("name"))
}

func (h *handler) listGlobal(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r.PathValue("kind"), false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.list(w, r, k.Name, "")
}

func (h *handler) getGlobal(w http.ResponseWriter, r *http.Request) {
	k, err := h.globalKind(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.get(w, r, k.Name, "", r.PathValue("name"))
}

func (h *handler) putGlobal(w http.ResponseWriter, r *http.Request) {
	k, err := h.globalKind(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.put(w, r, k, "", r.PathValue("name"))
}

func (h *handler) deleteGlobal(w http.ResponseWriter, r *http.Request) {
	k, err := h.globalKind(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.del(w, r, k.Name, "", r.PathValue("name"))
}

func (h *handler) globalKind(r *http.Request) (resource.KindInfo, error) {
	k, err := kindOf(r.PathValue("kind"), false)
	if err == nil && k.Scope == resource.ScopeMesh {
		err = problem.Newf(http.StatusNotFound, "mesh_scoped_kind", "kind is mesh-scoped",
			"%s lives in a mesh; use /meshes/{mesh}/%s/{name}", k.Name, k.Plural)
	}
	return k, err
}

func (h *handler) apply(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	docs, err := resource.Decode(body)
	if err != nil {
		var ferr *resource.FileError
		if errors.As(err, &ferr) {
			p := problem.New(http.StatusBadRequest, "invalid_resource", "invalid resources; nothing was stored", "")
			for _, v := range ferr.Violations() {
				p.Causes = append(p.Causes, problem.Cause{Field: v.Field, Message: v.Message})
			}
			p.Details = fmt.Sprintf("%d violation(s) in %d document(s); see causes", len(p.Causes), len(ferr.Documents))
			h.fail(w, r, p)
			return
		}
		h.fail(w, r, err)
		return
	}
	objs := make([]resource.Object, len(docs))
	var warns []string
	for i, d := range docs {
		objs[i] = d.Object
		for _, wn := range d.Warnings {
			warns = append(warns, fmt.Sprintf("document[%d]: %s", d.Index, wn))
		}
	}
	stored, err := h.o.Manager.Apply(r.Context(), objs)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if warns == nil {
		warns = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": stored, "warnings": warns})
}

func (h *handler) inspect(w http.ResponseWriter, r *http.Request) {
	mesh, name := r.PathValue("mesh"), r.PathValue("name")
	if _, _, err := h.o.Manager.Get(r.Context(), resource.KindDataplane, mesh, name); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.o.Inspector == nil {
		h.fail(w, r, problem.New(http.StatusServiceUnavailable, "xds_unavailable", "the xDS server is not running", ""))
		return
	}
	out, err := h.o.Inspector.InspectDataplane(r.Context(), mesh, name)
	if err == nil {
		err = unredacted(out)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (h *handler) rotate(w http.ResponseWriter, r *http.Request) {
	mesh := r.PathValue("mesh")
	if _, _, err := h.o.Manager.Get(r.Context(), resource.KindMesh, "", mesh); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.o.Rotator == nil {
		h.fail(w, r, problem.New(http.StatusServiceUnavailable, "rotation_unavailable", "key rotation is not available", ""))
		return
	}
	switch what := r.PathValue("what"); what {
	case "ca":
		if err := h.o.Rotator.RotateCA(r.Context(), mesh); err != nil {
			h.fail(w, r, fmt.Errorf("admin: rotating the CA of mesh %s: %w", mesh, err))
			return
		}
		h.o.Logger.Info("rotated CA root", "mesh", mesh)
		writeJSON(w, http.StatusOK, map[string]any{"mesh": mesh, "rotated": "ca"})
	case "signing-keys":
		kids, err := h.o.Rotator.RotateSigningKeys(r.Context(), mesh)
		if err != nil {
			h.fail(w, r, fmt.Errorf("admin: rotating the signing keys of mesh %s: %w", mesh, err))
			return
		}
		h.o.Logger.Info("rotated signing keys", "mesh", mesh, "kids", kids)
		writeJSON(w, http.StatusOK, map[string]any{"mesh": mesh, "rotated": "signing-keys", "kids": kids})
	default:
		h.fail(w, r, problem.Newf(http.StatusNotFound, "unknown_rotation", "nothing to rotate by that name",
			"%q is not rotatable; use ca or signing-keys", what))
	}
}

// withDefaults fills type, mesh and name from the path when the body omits
// them, so `PUT /meshes/default/dataplanes/web-1` may carry only the spec.
func withDefaults(body []byte, kind, mesh, name string) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		j, err := yaml.YAMLToJSON(body)
		if err != nil || json.Unmarshal(j, &m) != nil || m == nil {
			return body // invalid: the decoder reports it
		}
	}
	if _, ok := m["type"]; !ok {
		m["type"] = kind
	}
	if _, ok := m["name"]; !ok {
		m["name"] = name
	}
	if _, ok := m["mesh"]; !ok && mesh != "" {
		m["mesh"] = mesh
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, problem.Newf(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large", "the limit is %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return nil, problem.New(http.StatusBadRequest, "bad_body", "cannot read the request body", err.Error())
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
