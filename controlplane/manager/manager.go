// Package manager is the typed face of the store for user resources: it
// validates, checks references between resources (a Dataplane's Mesh must
// exist), and applies a file of many resources all or nothing.
package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/api/validation"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Check validates a resource against the stored state (e.g. a
// HostnameGenerator's template against the services it selects). It
// returns violations, or an error when the state cannot be read.
type Check func(ctx context.Context, s store.Store, obj resource.Object) (*validation.Error, error)

// Manager reads and writes resources.
type Manager struct {
	store  store.Store
	checks []Check
}

// New returns a manager over s that runs checks on every applied resource.
func New(s store.Store, checks ...Check) *Manager { return &Manager{store: s, checks: checks} }

// Key returns the store key of a resource.
func Key(obj resource.Object) store.Key {
	m := obj.GetMeta()
	return store.Key{Kind: m.Type, Mesh: m.Mesh, Name: m.Name}
}

// Get returns one resource with its store times set.
func (m *Manager) Get(ctx context.Context, kind, mesh, name string) (resource.Object, int64, error) {
	rec, err := m.store.Get(ctx, store.Key{Kind: kind, Mesh: mesh, Name: name})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, notFound(kind, mesh, name)
		}
		return nil, 0, fmt.Errorf("manager: getting %s %s: %w", kind, name, err)
	}
	obj, err := decode(rec)
	return obj, rec.Version, err
}

// List returns the resources of kind, of one mesh when mesh is not empty.
func (m *Manager) List(ctx context.Context, kind, mesh string) ([]resource.Object, error) {
	recs, err := m.store.List(ctx, kind, store.ListOptions{Mesh: mesh})
	if err != nil {
		return nil, fmt.Errorf("manager: listing %s: %w", kind, err)
	}
	out := make([]resource.Object, 0, len(recs))
	for _, r := range recs {
		obj, err := decode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// Apply stores every object (create or replace) in one atomic batch, after
// checking that each mesh-scoped object's Mesh exists or is in the batch.
// Nothing is stored when anything is wrong.
func (m *Manager) Apply(ctx context.Context, objs []resource.Object) ([]resource.Object, error) {
	verr := &validation.Error{}
	meshes := map[string]bool{}
	for _, o := range objs {
		if o.GetMeta().Type == resource.KindMesh {
			meshes[o.GetMeta().Name] = true
		}
	}
	writes := make([]store.Write, 0, len(objs))
	for i, o := range objs {
		if v := o.Validate(); !v.Empty() {
			verr.Merge(validation.Root().Field(fmt.Sprintf("document[%d]", i)), v)
			continue
		}
		if mesh := o.GetMeta().Mesh; mesh != "" && !meshes[mesh] {
			if _, err := m.store.Get(ctx, store.Key{Kind: resource.KindMesh, Name: mesh}); err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					return nil, fmt.Errorf("manager: checking mesh %s: %w", mesh, err)
				}
				verr.Add(validation.Root().Field(fmt.Sprintf("document[%d]", i)).Field("mesh"), fmt.Sprintf("mesh %q does not exist; apply a Mesh named %q first (or in the same file)", mesh, mesh))
				continue
			}
			meshes[mesh] = true
		}
		failed := false
		for _, check := range m.checks {
			v, err := check(ctx, m.store, o)
			if err != nil {
				return nil, fmt.Errorf("manager: checking %s %s: %w", o.GetMeta().Type, o.GetMeta().Name, err)
			}
			if !v.Empty() {
				verr.Merge(validation.Root().Field(fmt.Sprintf("document[%d]", i)), v)
				failed = true
			}
		}
		if failed {
			continue
		}
		spec, err := resource.Marshal(o)
		if err != nil {
			return nil, err
		}
		writes = append(writes, store.Write{Mode: store.Upsert, Record: store.Record{Key: Key(o), Spec: spec}})
	}
	if !verr.Empty() {
		if len(objs) == 1 {
			// A single resource reports its fields without the document prefix.
			for i := range verr.Violations {
				f := verr.Violations[i].Field
				if len(f) > len("document[0]") && f[:len("document[0]")] == "document[0]" {
					verr.Violations[i].Field = f[len("document[0]")+1:]
				} else if f == "document[0]" {
					verr.Violations[i].Field = ""
				}
			}
		}
		return nil, verr
	}
	recs, err := m.store.Batch(ctx, writes)
	if err != nil {
		return nil, fmt.Errorf("manager: storing %d resource(s): %w", len(writes), err)
	}
	out := make([]resource.Object, len(recs))
	for i, r := range recs {
		if out[i], err = decode(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Delete removes a resource. A Mesh that still holds resources is not
// deleted (409): delete them first.
func (m *Manager) Delete(ctx context.Context, kind, mesh, name string) error {
	if kind == resource.KindMesh {
		for _, k := range resource.Kinds() {
			if k.Scope == resource.ScopeGlobal {
				continue
			}
			recs, err := m.store.List(ctx, k.Name, store.ListOptions{Mesh: name})
			if err != nil {
				return fmt.Errorf("manager: listing %s of mesh %s: %w", k.Plural, name, err)
			}
			if len(recs) > 0 {
				return problem.Newf(http.StatusConflict, "mesh_not_empty", "the mesh still holds resources",
					"mesh %s has %d %s (e.g. %s); delete them first", name, len(recs), k.Plural, recs[0].Name)
			}
		}
	}
	err := store.DeleteRecord(ctx, m.store, store.Key{Kind: kind, Mesh: mesh, Name: name}, 0)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(kind, mesh, name)
	}
	if err != nil {
		return fmt.Errorf("manager: deleting %s %s: %w", kind, name, err)
	}
	return nil
}

func notFound(kind, mesh, name string) error {
	if mesh != "" {
		return problem.Newf(http.StatusNotFound, "not_found", "resource not found", "%s %q in mesh %q does not exist", kind, name, mesh)
	}
	return problem.Newf(http.StatusNotFound, "not_found", "resource not found", "%s %q does not exist", kind, name)
}

func decode(r store.Record) (resource.Object, error) {
	obj, err := resource.Unmarshal(r.Kind, r.Spec)
	if err != nil {
		return nil, fmt.Errorf("manager: stored %s: %w", r.Key, err)
	}
	resource.SetTimes(obj, r.CreatedAt, r.ModifiedAt)
	return obj, nil
}
