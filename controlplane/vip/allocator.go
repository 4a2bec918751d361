package vip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// chunk is how many services one allocation batch carries when no other
// writer interferes.
const chunk = 64

// ServiceKey names a service of a mesh.
type ServiceKey struct {
	Mesh    string
	Service string
}

// Allocator allocates and retires VIPs. It is safe for concurrent use, and
// several allocators (one per CP replica) may share one store: uniqueness
// comes from the store's atomic Create, not from this process.
type Allocator struct {
	st     store.Store
	ranges []netip.Prefix
	log    *slog.Logger
}

// NewAllocator returns an allocator handing out addresses of ranges, in
// order. log may be nil.
func NewAllocator(st store.Store, ranges []netip.Prefix, log *slog.Logger) (*Allocator, error) {
	if len(ranges) == 0 {
		return nil, errors.New("vip: no VIP range configured (KUMA_IPAM_MESH_SERVICE_CIDR)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rs := make([]netip.Prefix, len(ranges))
	for i, p := range ranges {
		if !p.IsValid() {
			return nil, fmt.Errorf("vip: range %d is not a valid CIDR", i)
		}
		rs[i] = p.Masked()
	}
	return &Allocator{st: st, ranges: rs, log: log}, nil
}

// List returns the VIP of every service of mesh that has one.
func List(ctx context.Context, st store.Store, mesh string) (map[string]netip.Addr, error) {
	if mesh == "" {
		return nil, errors.New("vip: listing VIPs: mesh must be set")
	}
	recs, err := st.List(ctx, KindServiceVIP, store.ListOptions{Mesh: mesh})
	if err != nil {
		return nil, fmt.Errorf("vip: listing VIPs of mesh %s: %w", mesh, err)
	}
	out := make(map[string]netip.Addr, len(recs))
	for _, r := range recs {
		a, err := decodeVIP(r.Spec)
		if err != nil {
			return nil, fmt.Errorf("%w (record %s)", err, r.Key)
		}
		out[r.Name] = a
	}
	return out, nil
}

// ListAll returns every service's VIP, all meshes.
func ListAll(ctx context.Context, st store.Store) (map[ServiceKey]netip.Addr, error) {
	recs, err := st.List(ctx, KindServiceVIP, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("vip: listing VIPs: %w", err)
	}
	out := make(map[ServiceKey]netip.Addr, len(recs))
	for _, r := range recs {
		a, err := decodeVIP(r.Spec)
		if err != nil {
			return nil, fmt.Errorf("%w (record %s)", err, r.Key)
		}
		out[ServiceKey{r.Mesh, r.Name}] = a
	}
	return out, nil
}

// Lookup returns one service's VIP, or an error wrapping store.ErrNotFound.
func Lookup(ctx context.Context, st store.Store, mesh, service string) (netip.Addr, error) {
	r, err := st.Get(ctx, store.Key{Kind: KindServiceVIP, Mesh: mesh, Name: service})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vip: looking up %s/%s: %w", mesh, service, err)
	}
	return decodeVIP(r.Spec)
}

// Sync makes the stored VIPs match want: every service in want gets a VIP
// (kept if it has one), every stored service not in want is retired. It
// returns the VIPs of want's services. When the ranges run out, the
// services left without a VIP are reported in an error wrapping
// ErrExhausted, and the others are still returned.
func (a *Allocator) Sync(ctx context.Context, want map[ServiceKey]bool) (map[ServiceKey]netip.Addr, error) {
	have, vers, err := a.listVIPs(ctx)
	if err != nil {
		return nil, err
	}
	var retire []ServiceKey
	for k := range have {
		if !want[k] {
			retire = append(retire, k)
		}
	}
	sortKeys(retire)
	var errs []error
	for _, k := range retire {
		if err := a.retire(ctx, k, vers[k]); err != nil {
			errs = append(errs, err)
		}
	}
	var missing []ServiceKey
	out := make(map[ServiceKey]netip.Addr, len(want))
	for k := range want {
		if v, ok := have[k]; ok {
			out[k] = v
		} else {
			missing = append(missing, k)
		}
	}
	got, err := a.allocate(ctx, missing)
	for k, v := range got {
		out[k] = v
	}
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// Ensure gives every service of mesh in services a VIP, allocating the
// missing ones, and returns them. It retires nothing.
func (a *Allocator) Ensure(ctx context.Context, mesh string, services []string) (map[string]netip.Addr, error) {
	have, err := List(ctx, a.st, mesh)
	if err != nil {
		return nil, err
	}
	out := map[string]netip.Addr{}
	var missing []ServiceKey
	for _, s := range services {
		if v, ok := have[s]; ok {
			out[s] = v
		} else {
			missing = append(missing, ServiceKey{mesh, s})
		}
	}
	got, err := a.allocate(ctx, missing)
	for k, v := range got {
		out[k.Service] = v
	}
	return out, err
}

// Retire removes a service's VIP and marks its address retired.
func (a *Allocator) Retire(ctx context.Context, mesh, service string) error {
	r, err := a.st.Get(ctx, store.Key{Kind: KindServiceVIP, Mesh: mesh, Name: service})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vip: retiring %s/%s: %w", mesh, service, err)
	}
	return a.retire(ctx, ServiceKey{mesh, service}, r)
}

func (a *Allocator) listVIPs(ctx context.Context) (map[ServiceKey]netip.Addr, map[ServiceKey]store.Record, error) {
	recs, err := a.st.List(ctx, KindServiceVIP, store.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("vip: listing VIPs: %w", err)
	}
	have := make(map[ServiceKey]netip.Addr, len(recs))
	vers := make(map[ServiceKey]store.Record, len(recs))
	for _, r := range recs {
		v, err := decodeVIP(r.Spec)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (record %s)", err, r.Key)
		}
		k := ServiceKey{r.Mesh, r.Name}
		have[k], vers[k] = v, r
	}
	return have, vers, nil
}

func (a *Allocator) retire(ctx context.Context, k ServiceKey, r store.Record) error {
	v, err := decodeVIP(r.Spec)
	if err != nil {
		return err
	}
	writes := []store.Write{{Mode: store.Delete, Record: store.Record{Key: r.Key, Version: r.Version}}}
	rk := store.Key{Kind: KindReservation, Name: v.String()}
	res, err := a.st.Get(ctx, rk)
	switch {
	case err == nil:
		var doc reservation
		if json.Unmarshal(res.Spec, &doc) == nil && doc.Mesh == k.Mesh && doc.Service == k.Service {
			doc.State = StateRetired
			res.Spec = encode(doc)
			writes = append(writes, store.Write{Mode: store.Update, Record: res})
		}
	case errors.Is(err, store.ErrNotFound):
		// No reservation (should not happen): reserve the address as
		// retired so that it is still not reused early.
		writes = append(writes, store.Write{Mode: store.Create, Record: store.Record{Key: rk,
			Spec: encode(reservation{Mesh: k.Mesh, Service: k.Service, State: StateRetired})}})
	default:
		return fmt.Errorf("vip: retiring %s/%s: %w", k.Mesh, k.Service, err)
	}
	if _, err := a.st.Batch(ctx, writes); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil // someone else changed it meanwhile; the next pass decides again
		}
		return fmt.Errorf("vip: retiring %s/%s (%s): %w", k.Mesh, k.Service, v, err)
	}
	a.log.Info("vip: retired", "mesh", k.Mesh, "service", k.Service, "vip", v.String())
	return nil
}

func sortKeys(ks []ServiceKey) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Mesh != ks[j].Mesh {
			return ks[i].Mesh < ks[j].Mesh
		}
		return ks[i].Service < ks[j].Service
	})
}
