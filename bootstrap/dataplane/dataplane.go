// Package dataplane renders the Dataplane template a sidecar is started
// with (--dataplane-file, KUMA_DATAPLANE_RUNTIME_RESOURCE) into a validated
// Dataplane resource.
//
// Templates use Kuma's mustache-style variables, `{{ name }}` (spaces
// optional; `{{ .name }}` is accepted too). Values come from
// --dataplane-var name=value and, unless given there, from the ECS task
// metadata: address (the task's IPv4), taskId, cluster (short name), az,
// family and dpname (<family>-<taskId>, a name unique per task). A
// variable that is neither is an error naming it and the line it is on.
package dataplane

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
)

// MaxTemplateSize caps a template.
const MaxTemplateSize = 256 << 10

// Built-in variable names filled from the task metadata.
const (
	VarAddress = "address"
	VarTaskID  = "taskId"
	VarCluster = "cluster"
	VarAZ      = "az"
	VarFamily  = "family"
	VarDPName  = "dpname"
)

var (
	varRE  = regexp.MustCompile(`\{\{-?\s*\.?([A-Za-z_][A-Za-z0-9_.-]*)\s*-?\}\}`)
	openRE = regexp.MustCompile(`\{\{`)
	nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// ParseVar parses one --dataplane-var argument, "name=value".
func ParseVar(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || !nameRE.MatchString(name) {
		return "", "", fmt.Errorf("dataplane: --dataplane-var %q must be name=value with a name of letters, digits, '_', '.' or '-'", s)
	}
	return name, value, nil
}

// TaskVars returns the built-in variables of a task.
func TaskVars(t ecsmeta.Task) map[string]string {
	v := map[string]string{
		VarAddress: t.IPv4(),
		VarTaskID:  t.ID(),
		VarCluster: t.ClusterName(),
		VarAZ:      t.AvailabilityZone,
		VarFamily:  t.Family,
	}
	name := t.ID()
	if t.Family != "" {
		name = t.Family + "-" + name
	}
	if len(name) > 253 {
		name = name[len(name)-253:]
	}
	v[VarDPName] = strings.Trim(name, "-._")
	return v
}

// Merge returns the task variables overridden by the user's.
func Merge(task, user map[string]string) map[string]string {
	out := make(map[string]string, len(task)+len(user))
	for k, v := range task {
		if v != "" {
			out[k] = v
		}
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}

// Render substitutes every variable of tmpl. Unknown variables and
// malformed `{{` are errors naming the line.
func Render(tmpl string, vars map[string]string) (string, error) {
	if len(tmpl) > MaxTemplateSize {
		return "", fmt.Errorf("dataplane: the template is %d bytes; at most %d", len(tmpl), MaxTemplateSize)
	}
	var missing []string
	seen := map[string]bool{}
	out := varRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := varRE.FindStringSubmatch(m)[1]
		if v, ok := vars[name]; ok {
			return v
		}
		if !seen[name] {
			seen[name] = true
			missing = append(missing, fmt.Sprintf("%q (line %d)", name, lineOf(tmpl, m)))
		}
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("dataplane: template variable %s not set; pass --dataplane-var NAME=VALUE (known: %s)",
			strings.Join(missing, ", "), strings.Join(known(vars), ", "))
	}
	// Anything still opening a template action is malformed.
	rest := varRE.ReplaceAllString(tmpl, "")
	if loc := openRE.FindStringIndex(rest); loc != nil {
		line := strings.Count(rest[:loc[0]], "\n") + 1
		return "", fmt.Errorf("dataplane: malformed template variable near line %d: use {{ name }}", line)
	}
	return out, nil
}

func lineOf(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		return 0
	}
	return strings.Count(s[:i], "\n") + 1
}

func known(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for k := range vars {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Build renders tmpl and decodes the result as one valid Dataplane.
func Build(tmpl string, vars map[string]string) (*resource.Dataplane, error) {
	text, err := Render(tmpl, vars)
	if err != nil {
		return nil, err
	}
	obj, _, err := resource.DecodeOne([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("dataplane: the rendered template is not a valid Dataplane: %w", err)
	}
	dp, ok := obj.(*resource.Dataplane)
	if !ok {
		return nil, fmt.Errorf("dataplane: the template is a %s; it must be a Dataplane", obj.GetMeta().Type)
	}
	return dp, nil
}
