package gui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
)

// mesh is a test world written straight into the store, past validation,
// as hostile as a record may be.
type world struct {
	meshes   []string
	services int
	dps      int
	name     func(i int) string // dataplane names
	service  func(i int) string // service names
	label    string             // a label value on every dataplane
	policy   string             // a MeshTimeout name
}

func put(t testing.TB, st store.Store, kind, mesh, name string, spec any) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertRecord(context.Background(), st, store.Record{Key: store.Key{Kind: kind, Mesh: mesh, Name: name}, Spec: b}); err != nil {
		t.Fatal(err)
	}
}

func (w world) build(t testing.TB) store.Store {
	t.Helper()
	st := memory.New(nil)
	if w.name == nil {
		w.name = func(i int) string { return fmt.Sprintf("dp-%05d", i) }
	}
	if w.service == nil {
		w.service = func(i int) string { return fmt.Sprintf("svc-%04d", i) }
	}
	for _, m := range w.meshes {
		put(t, st, "Mesh", "", m, map[string]any{"type": "Mesh", "name": m})
	}
	mesh := w.meshes[0]
	for i := 0; i < w.services; i++ {
		put(t, st, vip.KindServiceVIP, mesh, w.service(i), map[string]string{"vip": fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)})
	}
	for i := 0; i < w.dps; i++ {
		n := w.name(i)
		put(t, st, "Dataplane", mesh, n, map[string]any{
			"type": "Dataplane", "mesh": mesh, "name": n,
			"labels":     map[string]string{"team": w.label, "ecsmesh.io/ecs-cluster": w.label},
			"networking": map[string]any{"address": "10.0.0.1", "inbound": []any{map[string]any{"port": 15000, "servicePort": 8080, "tags": map[string]string{"kuma.io/service": w.service(i % max(w.services, 1))}}}},
		})
	}
	if w.policy != "" {
		put(t, st, "MeshTimeout", mesh, w.policy, map[string]any{"type": "MeshTimeout", "mesh": mesh, "name": w.policy,
			"labels": map[string]string{"x": w.label},
			"spec":   map[string]any{"targetRef": map[string]any{"kind": "MeshService", "name": w.service(0)}}})
		put(t, st, "MeshTrafficPermission", mesh, w.policy, map[string]any{"type": "MeshTrafficPermission", "mesh": mesh, "name": w.policy,
			"spec": map[string]any{"targetRef": map[string]any{"kind": "MeshService", "name": w.service(0)},
				"from": []any{map[string]any{"spiffeID": map[string]string{"type": "Exact", "value": "spiffe://x/" + w.label}, "action": "Allow"}}}})
	}
	return st
}

func newGUI(t testing.TB, st store.Store, token string) http.Handler {
	t.Helper()
	g, err := New(Options{Manager: manager.New(st), Store: st, Token: token, Domain: "mesh", InstanceID: "cp-1"})
	if err != nil {
		t.Fatal(err)
	}
	return g.Handler()
}

func get(t testing.TB, h http.Handler, path string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
