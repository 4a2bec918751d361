package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// HTTPRouteRule is a merged MeshHTTPRoute rule with the entries it came
// from.
type HTTPRouteRule struct {
	resource.HTTPRouteRule
	Origins []Origin `json:"origins"`
}

// HTTPRouteRules merges the MeshHTTPRoute entries of r that apply to a
// destination with tags, as Kuma does: rules are keyed by their matches;
// rules with equal matches merge their defaults (the later entry's
// filters or backendRefs replace the earlier's); the rules of the entry
// that applies last come first, in their written order, followed by the
// earlier entries' remaining rules.
func HTTPRouteRules(r Rules, tags map[string]string) ([]HTTPRouteRule, error) {
	type item struct {
		key     string
		matches []resource.HTTPRouteMatch
		entries Rules
	}
	var all []item
	for _, e := range r.For(tags) {
		rules, ok := e.Default.([]resource.HTTPRouteRule)
		if !ok {
			return nil, fmt.Errorf("policy: %s holds a %T, not MeshHTTPRoute rules", e.Origin, e.Default)
		}
		for i := len(rules) - 1; i >= 0; i-- {
			key, err := json.Marshal(rules[i].Matches)
			if err != nil {
				return nil, fmt.Errorf("policy: %s: %w", e.Origin, err)
			}
			conf := e
			conf.Default = rules[i].Default
			conf.patch, err = toPatch(rules[i].Default)
			if err != nil {
				return nil, fmt.Errorf("policy: %s: %w", e.Origin, err)
			}
			all = append(all, item{key: string(key), matches: rules[i].Matches, entries: Rules{conf}})
		}
	}
	// A rule takes the place of its last appearance and the defaults of
	// every earlier rule with the same matches.
	var merged []item
	for _, it := range all {
		for j := range merged {
			if merged[j].key == it.key {
				it.entries = append(merged[j].entries, it.entries...)
				merged = slices.Delete(merged, j, j+1)
				break
			}
		}
		merged = append(merged, it)
	}
	slices.Reverse(merged)
	out := make([]HTTPRouteRule, 0, len(merged))
	for _, it := range merged {
		conf, err := Merge[resource.HTTPRouteConf](it.entries)
		if err != nil {
			return nil, err
		}
		out = append(out, HTTPRouteRule{
			HTTPRouteRule: resource.HTTPRouteRule{Matches: it.matches, Default: conf},
			Origins:       it.entries.Origins(),
		})
	}
	return out, nil
}

// HTTPRoute is one match of a merged rule, in Envoy's route order.
type HTTPRoute struct {
	Match   resource.HTTPRouteMatch `json:"match"`
	Conf    resource.HTTPRouteConf  `json:"conf"`
	Origins []Origin                `json:"origins"`
}

// SortRoutes flattens merged rules into one route per match and orders
// them as Kuma does (Gateway API precedence), a stable sort: an exact path
// first, then the longest prefix, then the longest regular expression;
// then a method before none; then more header matches, then more query
// matches.
func SortRoutes(rules []HTTPRouteRule) []HTTPRoute {
	var out []HTTPRoute
	for _, r := range rules {
		for _, m := range r.Matches {
			out = append(out, HTTPRoute{Match: m, Conf: r.Default, Origins: r.Origins})
		}
	}
	slices.SortStableFunc(out, func(a, b HTTPRoute) int { return CompareMatch(a.Match, b.Match) })
	return out
}

// CompareMatch is negative when a is the more precise match (it must be
// tried first).
func CompareMatch(a, b resource.HTTPRouteMatch) int {
	if c := comparePath(a.Path, b.Path); c != 0 {
		return c
	}
	if c := cmp.Compare(absent(a.Method), absent(b.Method)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.Headers), len(a.Headers)); c != 0 {
		return c
	}
	return cmp.Compare(len(b.QueryParams), len(a.QueryParams))
}

var pathTypeOrder = map[string]int{resource.PathExact: 0, resource.PathPrefix: 1, resource.PathRegularExpression: 2}

func comparePath(a, b *resource.PathMatch) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if c := cmp.Compare(pathTypeOrder[a.Type], pathTypeOrder[b.Type]); c != 0 {
		return c
	}
	if a.Type == resource.PathExact {
		return 0
	}
	return cmp.Compare(len(b.Value), len(a.Value))
}

// absent is 1 for an empty string: set values sort first.
func absent(s string) int {
	if s == "" {
		return 1
	}
	return 0
}
