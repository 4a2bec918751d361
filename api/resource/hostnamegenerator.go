package resource

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// ExtensionRoute53 is the HostnameGenerator extension type that writes the
// names into a Route53 private hosted zone.
const ExtensionRoute53 = "Route53"

var (
	hostnameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	zoneIDRE   = regexp.MustCompile(`^(/hostedzone/)?[A-Z0-9]{1,32}$`)
)

// HostnameGenerator adds hostnames to the services it selects.
type HostnameGenerator struct {
	Meta
	Spec HostnameGeneratorSpec `json:"spec"`
}

// HostnameGeneratorSpec is the body of a HostnameGenerator.
type HostnameGeneratorSpec struct {
	Selector  HostnameSelector   `json:"selector"`
	Template  string             `json:"template"`
	Extension *HostnameExtension `json:"extension,omitempty"`
}

// HostnameSelector selects services by label (kuma.io/service,
// kuma.io/mesh, kuma.io/protocol).
type HostnameSelector struct {
	MeshService *LabelSelector `json:"meshService,omitempty"`
}

// HostnameExtension names where the hostnames are published.
type HostnameExtension struct {
	Type   string          `json:"type"`
	Config *Route53Options `json:"config,omitempty"`
}

// Route53Options configures the Route53 extension.
type Route53Options struct {
	HostedZoneID string `json:"hostedZoneId"`
}

// ServiceData is what hostname templates see: {{ .DisplayName }},
// {{ .Name }}, {{ .Mesh }} and {{ label "key" }}.
type ServiceData struct {
	DisplayName string
	Name        string
	Mesh        string
	Labels      map[string]string
}

// Selects reports whether the generator applies to a service with labels.
func (h *HostnameGenerator) Selects(labels map[string]string) bool {
	return h.Spec.Selector.MeshService.Matches(labels)
}

// Hostname renders the template for a service; the result is lower-cased
// and checked to be a DNS name.
func (h *HostnameGenerator) Hostname(svc ServiceData) (string, error) {
	t, err := template.New("hostname").Option("missingkey=error").Funcs(template.FuncMap{
		"label": func(k string) (string, error) {
			v, ok := svc.Labels[k]
			if !ok {
				return "", fmt.Errorf("service %s has no label %q", svc.Name, k)
			}
			return v, nil
		},
	}).Parse(h.Spec.Template)
	if err != nil {
		return "", fmt.Errorf("resource: hostname template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, svc); err != nil {
		return "", fmt.Errorf("resource: hostname template: %w", err)
	}
	name := NormalizeHostname(b.String())
	if len(name) > 253 || !hostnameRE.MatchString(name) {
		return "", fmt.Errorf("resource: hostname template renders %q, not a DNS name", name)
	}
	return name, nil
}

// Validate implements Object.
func (h *HostnameGenerator) Validate() *validation.Error {
	verr := &validation.Error{}
	validateMeta(&h.Meta, ScopeGlobal, verr)
	p := validation.Root().Field("spec")
	if sel := h.Spec.Selector.MeshService; sel != nil {
		validateLabels(p.Field("selector").Field("meshService").Field("matchLabels"), sel.MatchLabels, verr)
	}
	if h.Spec.Template == "" {
		verr.Add(p.Field("template"), `must be set, e.g. "{{ .DisplayName }}.svc.mesh.local"`)
	} else {
		sample := ServiceData{DisplayName: "svc", Name: "svc", Mesh: "default", Labels: map[string]string{}}
		for k, v := range h.Spec.Selector.MeshService.labelsOrNil() {
			sample.Labels[k] = v
		}
		if _, err := h.Hostname(sample); err != nil && !strings.Contains(err.Error(), "has no label") {
			verr.Add(p.Field("template"), strings.TrimPrefix(strings.TrimPrefix(err.Error(), "resource: "), "hostname template: "))
		}
	}
	if ext := h.Spec.Extension; ext != nil {
		ep := p.Field("extension")
		if ext.Type != ExtensionRoute53 {
			verr.Add(ep.Field("type"), "must be Route53")
		}
		if ext.Config == nil || ext.Config.HostedZoneID == "" {
			verr.Add(ep.Field("config").Field("hostedZoneId"), "must be set to the private hosted zone's ID, e.g. Z0123456789ABCDEFGHIJ")
		} else if !zoneIDRE.MatchString(ext.Config.HostedZoneID) {
			verr.Add(ep.Field("config").Field("hostedZoneId"), "must be a Route53 hosted zone ID: upper-case letters and digits")
		}
	}
	return verr
}

func (s *LabelSelector) labelsOrNil() map[string]string {
	if s == nil {
		return nil
	}
	return s.MatchLabels
}
