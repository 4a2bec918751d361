package devdemo

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Received is what a stand-in Envoy holds (its xds.json).
type Received struct {
	Listeners []string
	Clusters  []string
	// Endpoints maps a cluster to its endpoint addresses.
	Endpoints map[string][]string
	Secrets   []string
	// Filters maps an ECDS name to the filter's JSON configuration.
	Filters map[string]string
}

// ReadReceived parses an agent's xds.json.
func ReadReceived(dir string) (*Received, error) {
	data, err := os.ReadFile(filepath.Join(dir, "xds.json"))
	if err != nil {
		return nil, err
	}
	var snap struct {
		Resources map[string][]map[string]any `json:"resources"`
	}
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("devdemo: %s/xds.json: %w", dir, err)
	}
	r := &Received{Endpoints: map[string][]string{}, Filters: map[string]string{}}
	for _, l := range snap.Resources[resourcev3.ListenerType] {
		r.Listeners = append(r.Listeners, str(l["name"]))
	}
	for _, c := range snap.Resources[resourcev3.ClusterType] {
		r.Clusters = append(r.Clusters, str(c["name"]))
	}
	for _, s := range snap.Resources[resourcev3.SecretType] {
		r.Secrets = append(r.Secrets, str(s["name"]))
	}
	for _, e := range snap.Resources[resourcev3.EndpointType] {
		name := str(e["clusterName"])
		r.Endpoints[name] = []string{}
		eps, _ := e["endpoints"].([]any)
		for _, le := range eps {
			lbs, _ := le.(map[string]any)["lbEndpoints"].([]any)
			for _, lb := range lbs {
				sa := dig(lb, "endpoint", "address", "socketAddress")
				if m, ok := sa.(map[string]any); ok {
					r.Endpoints[name] = append(r.Endpoints[name], fmt.Sprintf("%s:%v", str(m["address"]), m["portValue"]))
				}
			}
		}
	}
	for _, x := range snap.Resources[resourcev3.ExtensionConfigType] {
		if cfg, ok := dig(x, "typedConfig", "config", "configuration", "value").(string); ok {
			r.Filters[str(x["name"])] = cfg
		} else if b, err := json.Marshal(dig(x, "typedConfig")); err == nil {
			r.Filters[str(x["name"])] = string(b)
		}
	}
	sort.Strings(r.Listeners)
	sort.Strings(r.Clusters)
	return r, nil
}

// Filter returns the filter config whose ECDS name starts with prefix.
func (r *Received) Filter(prefix string) (string, bool) {
	for name, cfg := range r.Filters {
		if strings.HasPrefix(name, prefix) {
			return cfg, true
		}
	}
	return "", false
}

func str(v any) string { s, _ := v.(string); return s }

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
