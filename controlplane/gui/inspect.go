package gui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// inspectSummary is a dataplane's resolved configuration in a few tables:
// what inspect shows, never key material (the Inspector redacts it, and
// summarizeInspect refuses output that still holds any).
type inspectSummary struct {
	Version   string
	Listeners []listenerRow
	Clusters  []clusterRow
	Routes    []routeRow
	Certs     []certRow
	Tokens    []string
	Policies  string
}

type listenerRow struct{ Name, Address string }
type clusterRow struct{ Name, Type string }
type routeRow struct {
	Name    string
	Domains []string
}
type certRow struct {
	Secret, Subject, NotAfter string
	URISANs                   []string
}

var (
	jwtRE        = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	tokenExpRE   = regexp.MustCompile(`\[redacted JWT; expires ([0-9TZ:+-]+)\]`)
	errKeyInView = errors.New("gui: the xDS view holds key material; refusing to show it")
)

// summarizeInspect reads InspectDataplane's output.
func summarizeInspect(out []byte) (*inspectSummary, error) {
	if bytes.Contains(out, []byte("PRIVATE KEY")) || jwtRE.Match(out) {
		return nil, errKeyInView
	}
	var doc struct {
		Version   string                       `json:"version"`
		Resources map[string][]json.RawMessage `json:"resources"`
		Policies  json.RawMessage              `json:"policies"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("gui: reading the xDS view: %w", err)
	}
	s := &inspectSummary{Version: doc.Version}
	for typeURL, list := range doc.Resources {
		for _, raw := range list {
			var m map[string]any
			if json.Unmarshal(raw, &m) != nil {
				continue
			}
			name, _ := m["name"].(string)
			switch {
			case strings.HasSuffix(typeURL, ".Listener"):
				s.Listeners = append(s.Listeners, listenerRow{Name: name, Address: socketAddress(m["address"])})
			case strings.HasSuffix(typeURL, ".Cluster"):
				t, _ := m["type"].(string)
				if t == "" {
					t = "EDS"
				}
				s.Clusters = append(s.Clusters, clusterRow{Name: name, Type: t})
			case strings.HasSuffix(typeURL, ".RouteConfiguration"):
				row := routeRow{Name: name}
				vhs, _ := m["virtualHosts"].([]any)
				for _, vh := range vhs {
					vm, _ := vh.(map[string]any)
					ds, _ := vm["domains"].([]any)
					for _, d := range ds {
						if s, ok := d.(string); ok {
							row.Domains = append(row.Domains, s)
						}
					}
				}
				s.Routes = append(s.Routes, row)
			case strings.HasSuffix(typeURL, ".Secret"):
				s.Certs = append(s.Certs, secretCerts(name, m)...)
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range tokenExpRE.FindAllSubmatch(out, -1) {
		if e := string(m[1]); !seen[e] {
			seen[e] = true
			s.Tokens = append(s.Tokens, e)
		}
	}
	sort.Strings(s.Tokens)
	sort.Slice(s.Listeners, func(i, j int) bool { return s.Listeners[i].Name < s.Listeners[j].Name })
	sort.Slice(s.Clusters, func(i, j int) bool { return s.Clusters[i].Name < s.Clusters[j].Name })
	sort.Slice(s.Routes, func(i, j int) bool { return s.Routes[i].Name < s.Routes[j].Name })
	if len(doc.Policies) > 0 && string(doc.Policies) != "null" {
		var b bytes.Buffer
		if json.Indent(&b, doc.Policies, "", "  ") == nil {
			s.Policies = b.String()
		}
	}
	return s, nil
}

func socketAddress(v any) string {
	m, _ := v.(map[string]any)
	sa, _ := m["socketAddress"].(map[string]any)
	if sa == nil {
		return ""
	}
	return fmt.Sprintf("%v:%v", sa["address"], sa["portValue"])
}

// secretCerts lists the certificate summaries inspect puts beside a
// Secret's chain (tlsCertificate) and trusted CA (validationContext).
func secretCerts(name string, m map[string]any) []certRow {
	var out []certRow
	for _, part := range []string{"tlsCertificate", "validationContext"} {
		pm, _ := m[part].(map[string]any)
		certs, _ := pm["certificates"].([]any)
		for _, c := range certs {
			cm, _ := c.(map[string]any)
			row := certRow{Secret: name + " (" + part + ")"}
			row.Subject, _ = cm["subject"].(string)
			row.NotAfter, _ = cm["notAfter"].(string)
			uris, _ := cm["uriSans"].([]any)
			for _, u := range uris {
				if s, ok := u.(string); ok {
					row.URISANs = append(row.URISANs, s)
				}
			}
			out = append(out, row)
		}
	}
	return out
}
