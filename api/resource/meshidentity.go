package resource

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"text/template"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// DefaultIdentityPath is the SPIFFE ID path when no MeshIdentity says otherwise.
const DefaultIdentityPath = "/workload/{{ .Workload }}"

// MeshIdentity decides the SPIFFE ID of the dataplanes it selects.
type MeshIdentity struct {
	Meta
	Spec MeshIdentitySpec `json:"spec"`
}

// MeshIdentitySpec is the body of a MeshIdentity.
type MeshIdentitySpec struct {
	Selector MeshIdentitySelector `json:"selector"`
	SpiffeID SpiffeIDTemplate     `json:"spiffeID"`
}

// MeshIdentitySelector selects dataplanes by label; empty selects all.
type MeshIdentitySelector struct {
	Dataplane *LabelSelector `json:"dataplane,omitempty"`
}

// SpiffeIDTemplate holds templates over .Mesh, .Workload, .Service and
// `label "key"`.
type SpiffeIDTemplate struct {
	// TrustDomain defaults to the Mesh's mtls.trustDomain.
	TrustDomain string `json:"trustDomain,omitempty"`
	// Path defaults to "/workload/{{ .Workload }}".
	Path string `json:"path,omitempty"`
}

// identityData is what identity templates see.
type identityData struct {
	Mesh     string
	Workload string
	Service  string
	labels   map[string]string
	// anyLabel makes every label lookup succeed (validation renders
	// templates with sample data).
	anyLabel bool
}

func (d identityData) funcs() template.FuncMap {
	return template.FuncMap{"label": func(k string) (string, error) {
		if d.anyLabel {
			return "label", nil
		}
		v, ok := d.labels[k]
		if !ok {
			return "", fmt.Errorf("the dataplane has no label %q", k)
		}
		return v, nil
	}}
}

func render(name, text string, data identityData) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(data.funcs()).Parse(text)
	if err != nil {
		return "", fmt.Errorf("invalid template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("cannot render template: %w", err)
	}
	return b.String(), nil
}

func renderTrustDomain(text string, data identityData) (string, error) {
	s, err := render("trustDomain", text, data)
	if err != nil {
		return "", err
	}
	if _, err := spiffeid.TrustDomainFromString(s); err != nil {
		return "", fmt.Errorf("renders to %q, not a valid trust domain: %w", s, err)
	}
	return s, nil
}

// Selects reports whether the identity applies to dp.
func (mi *MeshIdentity) Selects(dp *Dataplane) bool {
	return mi.Meta.Mesh == dp.Meta.Mesh && mi.Spec.Selector.Dataplane.Matches(dp.Labels)
}

// UsesWorkload reports whether the SPIFFE ID path depends on the workload,
// in which case an IAM role's kuma.io/workload tag must match (the role
// tag check of the IAM login).
func (mi *MeshIdentity) UsesWorkload() bool {
	if mi == nil || mi.Spec.SpiffeID.Path == "" {
		return true
	}
	return strings.Contains(mi.Spec.SpiffeID.Path, ".Workload") || strings.Contains(mi.Spec.SpiffeID.Path, TagWorkload)
}

// SelectIdentity returns the MeshIdentity that applies to dp: the one whose
// selector requires the most labels, ties broken by name; nil when none
// selects it (the mesh default applies).
func SelectIdentity(ids []*MeshIdentity, dp *Dataplane) *MeshIdentity {
	var match []*MeshIdentity
	for _, mi := range ids {
		if mi.Selects(dp) {
			match = append(match, mi)
		}
	}
	sort.SliceStable(match, func(i, j int) bool {
		si, sj := match[i].Spec.Selector.Dataplane.Size(), match[j].Spec.Selector.Dataplane.Size()
		if si != sj {
			return si > sj
		}
		return match[i].Name < match[j].Name
	})
	if len(match) == 0 {
		return nil
	}
	return match[0]
}

// SPIFFEID computes the SPIFFE ID of dp in mesh under identity mi (nil for
// the mesh default).
func SPIFFEID(mesh *Mesh, mi *MeshIdentity, dp *Dataplane) (spiffeid.ID, error) {
	data := identityData{Mesh: mesh.Name, Workload: dp.Workload(), labels: dp.Labels}
	if s := dp.Services(); len(s) > 0 {
		data.Service = s[0]
	}
	tdText, pathText := "", DefaultIdentityPath
	if mi != nil {
		tdText = mi.Spec.SpiffeID.TrustDomain
		if mi.Spec.SpiffeID.Path != "" {
			pathText = mi.Spec.SpiffeID.Path
		}
	}
	var td string
	var err error
	if tdText == "" {
		td, err = mesh.TrustDomain()
	} else {
		td, err = renderTrustDomain(tdText, data)
	}
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("resource: trust domain of dataplane %s/%s: %w", dp.Mesh, dp.Name, err)
	}
	path, err := render("path", pathText, data)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("resource: SPIFFE ID path of dataplane %s/%s: %w", dp.Mesh, dp.Name, err)
	}
	tdID, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("resource: trust domain %q: %w", td, err)
	}
	id, err := spiffeid.FromPath(tdID, path)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("resource: SPIFFE ID path %q of dataplane %s/%s: %w", path, dp.Mesh, dp.Name, err)
	}
	return id, nil
}

// Validate implements Object.
func (mi *MeshIdentity) Validate() *validation.Error {
	verr := &validation.Error{}
	validateMeta(&mi.Meta, ScopeMesh, verr)
	p := validation.Root().Field("spec")
	if sel := mi.Spec.Selector.Dataplane; sel != nil {
		validateLabels(p.Field("selector").Field("dataplane").Field("matchLabels"), sel.MatchLabels, verr)
	}
	sample := identityData{Mesh: "default", Workload: "workload", Service: "service", anyLabel: true}
	if td := mi.Spec.SpiffeID.TrustDomain; td != "" {
		if _, err := renderTrustDomain(td, sample); err != nil {
			verr.Add(p.Field("spiffeID").Field("trustDomain"), err.Error())
		}
	}
	if path := mi.Spec.SpiffeID.Path; path != "" {
		out, err := render("path", path, sample)
		if err != nil {
			verr.Add(p.Field("spiffeID").Field("path"), err.Error())
		} else if err := spiffeid.ValidatePath(out); err != nil {
			verr.Add(p.Field("spiffeID").Field("path"), fmt.Sprintf("renders to %q, not a valid SPIFFE ID path (it must start with '/'): %v", out, err))
		}
	}
	return verr
}
