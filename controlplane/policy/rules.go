package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// Origin names the policy entry a configuration came from.
type Origin struct {
	// Policy is the policy's name.
	Policy string
	// Entry is "to[0]", "from[1]" or "rules[0]".
	Entry string
}

// String renders "policy/to[0]".
func (o Origin) String() string { return o.Policy + "/" + o.Entry }

// MarshalText renders the origin as its String, so that JSON shows
// "mesh-defaults/to[0]".
func (o Origin) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Entry is one to or from entry of a policy that selects the Dataplane.
type Entry struct {
	Origin Origin
	// Subset is what the destination (to) or caller (from) must carry.
	Subset Subset
	// Default is the kind's conf value (e.g. resource.MeshTimeoutConf).
	Default any
	// patch is Default as decoded JSON, built once.
	patch map[string]any
}

// Rules are the entries of the policies of one kind that may apply, least
// precedence first.
type Rules []Entry

// Outbound returns the to entries of the policies that select dp, in
// precedence order. Policies of another mesh are skipped.
func Outbound[P resource.Policy](policies []P, dp *resource.Dataplane) Rules {
	var rules Rules
	for _, p := range sorted(policies, dp) {
		if Selects(p.TopTargetRef(), dp) {
			to, _ := p.Entries()
			rules = append(rules, entries(p, to)...)
		}
	}
	return rules
}

// Inbound returns, for each inbound of dp (same index), the from and rules
// entries of the policies that select it, in precedence order.
func Inbound[P resource.Policy](policies []P, dp *resource.Dataplane) []Rules {
	ps := sorted(policies, dp)
	out := make([]Rules, len(dp.Networking.Inbound))
	for i := range dp.Networking.Inbound {
		for _, p := range ps {
			if SelectsInbound(p.TopTargetRef(), dp, dp.Networking.Inbound[i].Tags) {
				_, from := p.Entries()
				out[i] = append(out[i], entries(p, from)...)
			}
		}
	}
	return out
}

func sorted[P resource.Policy](policies []P, dp *resource.Dataplane) []P {
	ps := make([]P, 0, len(policies))
	for _, p := range policies {
		if p.GetMeta().Mesh == dp.Mesh {
			ps = append(ps, p)
		}
	}
	Sort(ps)
	return ps
}

func entries(p resource.Policy, list []resource.PolicyEntry) Rules {
	out := make(Rules, 0, len(list))
	for _, e := range list {
		o := Origin{Policy: p.GetMeta().Name, Entry: fmt.Sprintf("%s[%d]", e.Field, e.Index)}
		// Route rules (a list) are merged by HTTPRouteRules, not as a patch.
		patch, _ := toPatch(e.Default)
		out = append(out, Entry{
			Origin:  o,
			Subset:  SubsetOf(e.TargetRef),
			Default: e.Default,
			patch:   patch,
		})
	}
	return out
}

// For returns the entries that apply to a destination or caller with tags.
func (r Rules) For(tags map[string]string) Rules {
	var out Rules
	for _, e := range r {
		if e.Subset.Matches(tags) {
			out = append(out, e)
		}
	}
	return out
}

// Origins lists where the entries come from, in order.
func (r Rules) Origins() []Origin {
	out := make([]Origin, len(r))
	for i, e := range r {
		out[i] = e.Origin
	}
	return out
}

// Subsets lists the distinct subsets of the entries, the most specific
// (most tags) first, then in the order of their first entry.
func (r Rules) Subsets() []Subset {
	var out []Subset
	seen := map[string]bool{}
	for _, e := range r {
		k := subsetKey(e.Subset)
		if !seen[k] {
			seen[k] = true
			out = append(out, e.Subset)
		}
	}
	slices.SortStableFunc(out, func(a, b Subset) int { return cmp.Compare(len(b), len(a)) })
	return out
}

func subsetKey(s Subset) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s)) {
		b.WriteString(k + "=" + s[k] + ";")
	}
	return b.String()
}

// Merge merges the defaults of every entry of r, in order, into a C. Each
// entry's Default must be a C.
func Merge[C any](r Rules) (C, error) {
	var out C
	acc := map[string]any{}
	for _, e := range r {
		if _, ok := e.Default.(C); !ok {
			return out, fmt.Errorf("policy: %s holds a %T, not a %T", e.Origin, e.Default, out)
		}
		patch := e.patch
		if patch == nil {
			var err error
			if patch, err = toPatch(e.Default); err != nil {
				return out, fmt.Errorf("policy: %s: %w", e.Origin, err)
			}
		}
		mergePatch(acc, patch)
	}
	b, err := json.Marshal(acc)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		return out, fmt.Errorf("policy: merging into %T: %w", out, err)
	}
	return out, nil
}

// Conf merges the entries that apply to tags. ok is false when none does.
func Conf[C any](r Rules, tags map[string]string) (conf C, origins []Origin, ok bool, err error) {
	applied := r.For(tags)
	if len(applied) == 0 {
		return conf, nil, false, nil
	}
	conf, err = Merge[C](applied)
	return conf, applied.Origins(), err == nil, err
}

// SubsetConf is the merged configuration for one subset of destinations or
// callers.
type SubsetConf[C any] struct {
	Subset  Subset
	Conf    C
	Origins []Origin
}

// BySubset merges, for each distinct subset of r (the most specific
// first), the entries that apply to it: what a destination or caller
// carrying exactly those tags gets. The last element, for the whole mesh,
// is present when an entry targets the Mesh. A caller carrying the tags of
// two subsets neither of which contains the other gets Conf(r, its tags),
// which merges both; BySubset does not list that combination.
func BySubset[C any](r Rules) ([]SubsetConf[C], error) {
	var out []SubsetConf[C]
	for _, s := range r.Subsets() {
		c, origins, _, err := Conf[C](r, s)
		if err != nil {
			return nil, err
		}
		out = append(out, SubsetConf[C]{Subset: s, Conf: c, Origins: origins})
	}
	return out, nil
}

// ToServices merges, for each service, the entries that apply to it;
// services no entry applies to are absent.
func ToServices[C any](r Rules, services []string) (map[string]C, error) {
	out := map[string]C{}
	for _, s := range services {
		c, _, ok, err := Conf[C](r, Service(s))
		if err != nil {
			return nil, err
		}
		if ok {
			out[s] = c
		}
	}
	return out, nil
}

func toPatch(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("a %T is not a JSON object", v)
	}
	return m, nil
}

// mergePatch applies patch to dst as RFC 7386 describes: objects merge key
// by key, null removes, anything else (a list included) replaces. patch is
// never modified; the objects dst gains are copies.
func mergePatch(dst, patch map[string]any) {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = map[string]any{}
				dst[k] = d
			}
			mergePatch(d, pv)
		default:
			dst[k] = v
		}
	}
}

// Dataplane merges the defaults of the policies of a single-default kind
// (MeshTrace, MeshMetric: Entries returns the default as a Mesh entry)
// that select dp, in precedence order. ok is false when none does.
func Dataplane[C any, P resource.Policy](policies []P, dp *resource.Dataplane) (conf C, origins []Origin, ok bool, err error) {
	r := Outbound(policies, dp)
	if len(r) == 0 {
		return conf, nil, false, nil
	}
	conf, err = Merge[C](r)
	return conf, r.Origins(), err == nil, err
}
