package vip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// candidate is an address to try: fresh (reuse nil) or a retired
// reservation to take over.
type candidate struct {
	addr  netip.Addr
	reuse *store.Record
}

// pool walks the ranges in order, skipping every reserved address, then
// offers the retired reservations, longest-retired first. A service that
// comes back takes its own retired address first (take), so that its VIP
// survives a moment with no task (a rolling deploy at 0% minimum).
type pool struct {
	ranges   []netip.Prefix
	reserved map[netip.Addr]bool
	retired  []store.Record
	// owners[i] is the service retired[i] belonged to.
	owners  []ServiceKey
	pending []candidate
	ri      int
	cur     netip.Addr
	done    bool
}

func (a *Allocator) loadPool(ctx context.Context) (*pool, error) {
	recs, err := a.st.List(ctx, KindReservation, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("vip: listing reservations: %w", err)
	}
	p := &pool{ranges: a.ranges, reserved: make(map[netip.Addr]bool, len(recs))}
	for _, r := range recs {
		addr, err := netip.ParseAddr(r.Name)
		if err != nil {
			continue // not ours to judge; never handed out by this allocator
		}
		p.reserved[addr] = true
		var doc reservation
		if json.Unmarshal(r.Spec, &doc) == nil && doc.State == StateRetired && a.inRanges(addr) {
			p.retired = append(p.retired, r)
		}
	}
	sort.SliceStable(p.retired, func(i, j int) bool {
		if !p.retired[i].ModifiedAt.Equal(p.retired[j].ModifiedAt) {
			return p.retired[i].ModifiedAt.Before(p.retired[j].ModifiedAt)
		}
		return p.retired[i].Name < p.retired[j].Name
	})
	p.owners = make([]ServiceKey, len(p.retired))
	for i, r := range p.retired {
		var doc reservation
		_ = json.Unmarshal(r.Spec, &doc)
		p.owners[i] = ServiceKey{doc.Mesh, doc.Service}
	}
	if len(p.ranges) > 0 {
		p.cur = p.ranges[0].Addr()
	}
	return p, nil
}

func (a *Allocator) inRanges(addr netip.Addr) bool {
	for _, p := range a.ranges {
		if usable(p, addr) {
			return true
		}
	}
	return false
}

// next returns the next candidate, or false when the ranges are exhausted.
func (p *pool) next() (candidate, bool) {
	if n := len(p.pending); n > 0 {
		c := p.pending[n-1]
		p.pending = p.pending[:n-1]
		return c, true
	}
	for !p.done {
		if p.ri >= len(p.ranges) {
			p.done = true
			break
		}
		r := p.ranges[p.ri]
		a := p.cur
		if !a.IsValid() || !r.Contains(a) {
			p.ri++
			if p.ri < len(p.ranges) {
				p.cur = p.ranges[p.ri].Addr()
			}
			continue
		}
		p.cur = a.Next()
		if usable(r, a) && !p.reserved[a] {
			p.reserved[a] = true
			return candidate{addr: a}, true
		}
	}
	if len(p.retired) > 0 {
		r := p.retired[0]
		p.retired, p.owners = p.retired[1:], p.owners[1:]
		addr, _ := netip.ParseAddr(r.Name)
		return candidate{addr: addr, reuse: &r}, true
	}
	return candidate{}, false
}

// take returns k's own retired address, the most recently retired one,
// if it is still unclaimed.
func (p *pool) take(k ServiceKey) (candidate, bool) {
	for i := len(p.retired) - 1; i >= 0; i-- {
		if p.owners[i] != k {
			continue
		}
		r := p.retired[i]
		p.retired = append(p.retired[:i:i], p.retired[i+1:]...)
		p.owners = append(p.owners[:i:i], p.owners[i+1:]...)
		addr, _ := netip.ParseAddr(r.Name)
		return candidate{addr: addr, reuse: &r}, true
	}
	return candidate{}, false
}

// candidateFor offers k its own retired address first, else the next one.
func (p *pool) candidateFor(k ServiceKey) (candidate, bool) {
	if c, ok := p.take(k); ok {
		return c, true
	}
	return p.next()
}

// putBack returns unused candidates, to be offered again in the same order.
func (p *pool) putBack(cs []candidate) {
	for i := len(cs) - 1; i >= 0; i-- {
		p.pending = append(p.pending, cs[i])
	}
}

func writesFor(k ServiceKey, c candidate) []store.Write {
	res := store.Record{Key: store.Key{Kind: KindReservation, Name: c.addr.String()},
		Spec: encode(reservation{Mesh: k.Mesh, Service: k.Service, State: StateActive})}
	rw := store.Write{Mode: store.Create, Record: res}
	if c.reuse != nil {
		res.Version = c.reuse.Version
		rw = store.Write{Mode: store.Update, Record: res}
	}
	return []store.Write{
		{Mode: store.Create, Record: store.Record{Key: store.Key{Kind: KindServiceVIP, Mesh: k.Mesh, Name: k.Service},
			Spec: encode(serviceVIP{VIP: c.addr.String()})}},
		rw,
	}
}

func raced(err error) bool {
	return errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)
}

// allocate gives each of missing a VIP: chunks in one batch each while no
// other writer interferes, one by one after a race.
func (a *Allocator) allocate(ctx context.Context, missing []ServiceKey) (map[ServiceKey]netip.Addr, error) {
	out := map[ServiceKey]netip.Addr{}
	if len(missing) == 0 {
		return out, nil
	}
	sortKeys(missing)
	p, err := a.loadPool(ctx)
	if err != nil {
		return nil, err
	}
	var exhausted []ServiceKey
	for i := 0; i < len(missing); i += chunk {
		part := missing[i:min(i+chunk, len(missing))]
		var cands []candidate
		for _, k := range part {
			c, ok := p.candidateFor(k)
			if !ok {
				break
			}
			cands = append(cands, c)
		}
		if len(cands) == len(part) {
			var writes []store.Write
			for j, k := range part {
				writes = append(writes, writesFor(k, cands[j])...)
			}
			_, err := a.st.Batch(ctx, writes)
			if err == nil {
				for j, k := range part {
					out[k] = cands[j].addr
					a.log.Debug("vip: allocated", "mesh", k.Mesh, "service", k.Service, "vip", cands[j].addr.String())
				}
				continue
			}
			if !raced(err) {
				return out, fmt.Errorf("vip: allocating %d VIPs: %w", len(part), err)
			}
		}
		p.putBack(cands)
		for _, k := range part {
			v, err := a.allocateOne(ctx, &p, k)
			switch {
			case errors.Is(err, ErrExhausted):
				exhausted = append(exhausted, k)
			case err != nil:
				return out, err
			default:
				out[k] = v
			}
		}
	}
	if len(exhausted) > 0 {
		return out, fmt.Errorf("vip: no address left for %d service(s), first %s/%s: %w",
			len(exhausted), exhausted[0].Mesh, exhausted[0].Service, ErrExhausted)
	}
	return out, nil
}

// allocateOne retries candidates until one sticks or the service turns out
// to have been given a VIP by another writer.
func (a *Allocator) allocateOne(ctx context.Context, pp **pool, k ServiceKey) (netip.Addr, error) {
	reloaded := false
	for {
		c, ok := (*pp).candidateFor(k)
		if !ok {
			if reloaded {
				return netip.Addr{}, ErrExhausted
			}
			np, err := a.loadPool(ctx)
			if err != nil {
				return netip.Addr{}, err
			}
			*pp, reloaded = np, true
			continue
		}
		_, err := a.st.Batch(ctx, writesFor(k, c))
		if err == nil {
			a.log.Debug("vip: allocated", "mesh", k.Mesh, "service", k.Service, "vip", c.addr.String())
			return c.addr, nil
		}
		if !raced(err) {
			return netip.Addr{}, fmt.Errorf("vip: allocating for %s/%s: %w", k.Mesh, k.Service, err)
		}
		if v, err := Lookup(ctx, a.st, k.Mesh, k.Service); err == nil {
			return v, nil // another replica allocated it
		}
		// The address went to someone else: try the next one.
	}
}
