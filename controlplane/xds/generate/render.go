package generate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// Snapshot is every resource of one dataplane, by type URL.
type Snapshot map[string][]*Resource

// Resources assembles the snapshot of node n in mesh m: its own resources,
// the mesh's shared ones, and, when not nil, its identity secret and
// outbound filter configuration.
func Resources(m *Mesh, n *Node, identity, outbound *Resource) Snapshot {
	s := Snapshot{}
	s[resourcev3.ListenerType] = append(append([]*Resource(nil), n.Listeners...), m.NodeVIPListeners(n)...)
	s[resourcev3.ClusterType] = append(append([]*Resource(nil), m.NodeClusters(n)...), n.Clusters...)
	s[resourcev3.EndpointType] = append([]*Resource(nil), m.NodeEndpoints(n)...)
	var secrets []*Resource
	if identity != nil {
		secrets = append(secrets, identity)
	}
	if m.TrustBundle != nil {
		secrets = append(secrets, m.TrustBundle)
	}
	s[resourcev3.SecretType] = secrets
	exts := append([]*Resource(nil), n.Extensions...)
	if outbound != nil {
		exts = append(exts, outbound)
	}
	s[resourcev3.ExtensionConfigType] = exts
	for _, rs := range s {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	}
	return s
}

// Version is a content hash of the whole snapshot.
func (s Snapshot) Version() string {
	var parts []string
	for _, t := range Types {
		for _, r := range s[t] {
			parts = append(parts, t, r.Name, r.Version)
		}
	}
	return HashStrings(parts...)
}

// JSON renders the snapshot as `inspect` prints it:
// {"version": "...", "resources": {"<type URL>": [<protojson with @type>...]}},
// indented, with stable formatting.
func (s Snapshot) JSON() ([]byte, error) {
	out := struct {
		Version   string                       `json:"version"`
		Resources map[string][]json.RawMessage `json:"resources"`
	}{Version: s.Version(), Resources: map[string][]json.RawMessage{}}
	for _, t := range Types {
		list := []json.RawMessage{}
		for _, r := range s[t] {
			a, err := r.Packed()
			if err != nil {
				return nil, err
			}
			b, err := protojson.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("generate: rendering %s %s: %w", t, r.Name, err)
			}
			var c bytes.Buffer
			if err := json.Compact(&c, b); err != nil {
				return nil, fmt.Errorf("generate: rendering %s %s: %w", t, r.Name, err)
			}
			list = append(list, c.Bytes())
		}
		out.Resources[t] = list
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("generate: rendering snapshot: %w", err)
	}
	return append(b, '\n'), nil
}
