// Package ecs holds ecsmesh's CloudFormation templates; this test parses
// every template (short-form tags included) and checks its references and
// the environment variables it sets.
package ecs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	yaml "sigs.k8s.io/yaml/goyaml.v3"

	"github.com/ecsmesh/ecsmesh/bootstrap/cli"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
)

var pseudo = map[string]bool{
	"AWS::AccountId": true, "AWS::Region": true, "AWS::Partition": true, "AWS::StackName": true,
	"AWS::StackId": true, "AWS::NoValue": true, "AWS::URLSuffix": true, "AWS::NotificationARNs": true,
}

var subVarRE = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// template is one parsed CloudFormation template.
type template struct {
	name       string
	root       *yaml.Node
	params     map[string]bool
	resources  map[string]*yaml.Node
	conditions map[string]bool
}

func parse(name string, data []byte) (*template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a mapping", name)
	}
	t := &template{name: name, root: doc.Content[0], params: map[string]bool{}, resources: map[string]*yaml.Node{}, conditions: map[string]bool{}}
	for k, v := range pairs(t.root) {
		switch k {
		case "Parameters":
			for p := range pairs(v) {
				t.params[p] = true
			}
		case "Conditions":
			for c := range pairs(v) {
				t.conditions[c] = true
			}
		case "Resources":
			for r, n := range pairs(v) {
				t.resources[r] = n
			}
		}
	}
	if len(t.resources) == 0 {
		return nil, fmt.Errorf("%s: no Resources", name)
	}
	return t, nil
}

// pairs iterates a mapping node.
func pairs(n *yaml.Node) func(func(string, *yaml.Node) bool) {
	return func(yield func(string, *yaml.Node) bool) {
		if n == nil || n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !yield(n.Content[i].Value, n.Content[i+1]) {
				return
			}
		}
	}
}

func get(n *yaml.Node, key string) *yaml.Node {
	for k, v := range pairs(n) {
		if k == key {
			return v
		}
	}
	return nil
}

// check returns every dangling reference and unknown environment variable.
func (t *template) check(knownEnv map[string]bool) []string {
	var errs []string
	bad := func(n *yaml.Node, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d: %s", t.name, n.Line, fmt.Sprintf(format, args...)))
	}
	refOK := func(name string) bool { return t.params[name] || t.resources[name] != nil || pseudo[name] }
	checkRef := func(n *yaml.Node, name string) {
		if !refOK(name) {
			bad(n, "Ref %q names no parameter or resource", name)
		}
	}
	checkGetAtt := func(n *yaml.Node) {
		var res string
		switch n.Kind {
		case yaml.ScalarNode:
			res, _, _ = strings.Cut(n.Value, ".")
		case yaml.SequenceNode:
			if len(n.Content) == 2 {
				res = n.Content[0].Value
			}
		}
		if t.resources[res] == nil {
			bad(n, "GetAtt %q names no resource", res)
		}
	}
	checkSub := func(n *yaml.Node) {
		text, locals := n.Value, map[string]bool{}
		if n.Kind == yaml.SequenceNode && len(n.Content) == 2 {
			text = n.Content[0].Value
			for k := range pairs(n.Content[1]) {
				locals[k] = true
			}
		}
		for _, m := range subVarRE.FindAllStringSubmatch(text, -1) {
			v := m[1]
			if locals[v] || refOK(v) {
				continue
			}
			if res, _, ok := strings.Cut(v, "."); ok && t.resources[res] != nil {
				continue
			}
			bad(n, "Sub variable ${%s} names no parameter, resource or attribute", v)
		}
	}
	checkCond := func(n *yaml.Node, name string) {
		if !t.conditions[name] {
			bad(n, "condition %q is not defined", name)
		}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Tag {
		case "!Ref":
			checkRef(n, n.Value)
		case "!GetAtt":
			checkGetAtt(n)
		case "!Sub":
			checkSub(n)
		case "!If":
			if len(n.Content) == 3 {
				checkCond(n, n.Content[0].Value)
			} else {
				bad(n, "!If needs [condition, then, else]")
			}
		case "!Condition":
			checkCond(n, n.Value)
		}
		if n.Kind == yaml.MappingNode {
			for k, v := range pairs(n) {
				switch k {
				case "Ref":
					checkRef(v, v.Value)
				case "Fn::GetAtt":
					checkGetAtt(v)
				case "Fn::Sub":
					checkSub(v)
				case "Fn::If":
					if v.Kind == yaml.SequenceNode && len(v.Content) == 3 {
						checkCond(v, v.Content[0].Value)
					}
				case "Environment", "Secrets":
					if v.Kind == yaml.SequenceNode {
						for _, e := range v.Content {
							if name := get(e, "Name"); name != nil && !knownEnv[name.Value] {
								bad(name, "environment variable %s is read by neither ecsmesh-cp nor ecsmesh-dp", name.Value)
							}
						}
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for name, r := range t.resources {
		if c := get(r, "Condition"); c != nil {
			checkCond(c, c.Value)
		}
		if d := get(r, "DependsOn"); d != nil {
			deps := []*yaml.Node{d}
			if d.Kind == yaml.SequenceNode {
				deps = d.Content
			}
			for _, dep := range deps {
				if t.resources[dep.Value] == nil {
					bad(dep, "resource %s depends on undefined %s", name, dep.Value)
				}
			}
		}
	}
	walk(t.root)
	sort.Strings(errs)
	return errs
}

func knownEnv() map[string]bool {
	m := map[string]bool{}
	for _, e := range config.EnvNames() {
		m[e] = true
	}
	for _, e := range cli.EnvNames() {
		m[e] = true
	}
	return m
}

func loadAll(t *testing.T) map[string]*template {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	out := map[string]*template{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = tpl
	}
	return out
}

func TestTemplatesReferences(t *testing.T) {
	env := knownEnv()
	for name, tpl := range loadAll(t) {
		if errs := tpl.check(env); len(errs) > 0 {
			t.Errorf("%s:\n%s", name, strings.Join(errs, "\n"))
		}
	}
}

func TestCheckerCatchesOneSidedRenames(t *testing.T) {
	data, err := os.ReadFile("controlplane.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"resource renamed, !Ref kept", "\n  HostedZone:\n", "\n  MeshZone:\n", `Ref "HostedZone"`},
		{"!Ref renamed, resource kept", "!Ref ControlPlaneImage", "!Ref CPImage", `Ref "CPImage"`},
		{"GetAtt target renamed", "!GetAtt TaskRole.Arn", "!GetAtt CPRole.Arn", `GetAtt "CPRole"`},
		{"Sub variable renamed", "${ClusterName}/ecsmesh-cp", "${Cluster}/ecsmesh-cp", "${Cluster}"},
		{"condition renamed", "\n  Postgres: !Equals", "\n  UsePG: !Equals", `condition "Postgres"`},
		{"unknown env var", "KUMA_DNS_SERVER_DOMAIN, Value", "KUMA_DNS_DOMAIN, Value", "KUMA_DNS_DOMAIN is read by neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutated := strings.Replace(string(data), tt.from, tt.to, 1)
			if mutated == string(data) {
				t.Fatalf("the template no longer contains %q", tt.from)
			}
			tpl, err := parse("mutated.yaml", []byte(mutated))
			if err != nil {
				t.Fatal(err)
			}
			errs := strings.Join(tpl.check(knownEnv()), "\n")
			if !strings.Contains(errs, tt.want) {
				t.Fatalf("errors %q lack %q", errs, tt.want)
			}
		})
	}
}

// TestSidecarContract checks the demo task the way ECS must run it.
func TestSidecarContract(t *testing.T) {
	app := loadAll(t)["app.yaml"]
	td := get(app.resources["TaskDefinition"], "Properties")
	var sidecar, appc *yaml.Node
	for _, c := range get(td, "ContainerDefinitions").Content {
		switch get(c, "Name").Value {
		case "ecsmesh-sidecar":
			sidecar = c
		case "app":
			appc = c
		}
	}
	if sidecar == nil || appc == nil {
		t.Fatal("containers app and ecsmesh-sidecar expected")
	}
	if get(sidecar, "Essential").Value != "true" {
		t.Error("the sidecar must be essential")
	}
	hc := get(get(sidecar, "HealthCheck"), "Command")
	if hc == nil || len(hc.Content) < 3 || hc.Content[2].Value != "ready" {
		t.Error("the sidecar health check must run ecsmesh-dp ready")
	}
	// The CloudWatch agent's ECS Prometheus discovery finds the sidecar's
	// MeshMetric endpoint by its Docker labels; the port is mapped.
	labels := get(sidecar, "DockerLabels")
	for k, want := range map[string]string{"ECS_PROMETHEUS_EXPORTER_PORT": "MetricsPort", "ECS_PROMETHEUS_METRICS_PATH": "MetricsPath", "ECS_PROMETHEUS_JOB_NAME": "ecsmesh-sidecar"} {
		if v := get(labels, k); v == nil || v.Value != want {
			t.Errorf("sidecar Docker label %s = %v, want %s", k, v, want)
		}
	}
	if p := get(get(get(app.root, "Parameters"), "MetricsPort"), "Default"); p == nil || p.Value != "5670" {
		t.Errorf("MetricsPort default %v, want Kuma's 5670", p)
	}
	mapped := false
	for _, pm := range get(sidecar, "PortMappings").Content {
		mapped = mapped || get(pm, "ContainerPort").Value == "MetricsPort"
	}
	if !mapped {
		t.Error("the sidecar must map MetricsPort")
	}
	deps := get(appc, "DependsOn")
	if deps == nil || get(deps.Content[0], "ContainerName").Value != "ecsmesh-sidecar" || get(deps.Content[0], "Condition").Value != "HEALTHY" {
		t.Error("the app must depend on the sidecar being HEALTHY")
	}
	tags := map[string]bool{}
	for _, tag := range get(get(app.resources["TaskRole"], "Properties"), "Tags").Content {
		tags[get(tag, "Key").Value] = true
	}
	for _, k := range []string{"kuma.io/type", "kuma.io/mesh", "kuma.io/service", "kuma.io/workload"} {
		if !tags[k] {
			t.Errorf("task role lacks tag %s", k)
		}
	}
	// The CP task role has the permissions the CP needs (images/ecs/README.md).
	cp := loadAll(t)["controlplane.yaml"]
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(cp.resources["TaskRole"]); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"iam:GetRole", "route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets", "ecs:DescribeTasks"} {
		if !strings.Contains(b.String(), action) {
			t.Errorf("CP task role lacks %s", action)
		}
	}
}
