package ecs

import (
	"os"
	"regexp"
	"strings"
	"testing"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// rdsBundleURL is the RDS CA bundle for every region.
const rdsBundleURL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

// containerEnv maps each container definition of a template (by
// resource/container name) to its Environment entries by variable name.
func containerEnv(tpl *template) map[string]map[string]*yaml.Node {
	out := map[string]map[string]*yaml.Node{}
	for res, r := range tpl.resources {
		if get(r, "Type").Value != "AWS::ECS::TaskDefinition" {
			continue
		}
		for _, c := range get(get(r, "Properties"), "ContainerDefinitions").Content {
			env := map[string]*yaml.Node{}
			if e := get(c, "Environment"); e != nil {
				for _, kv := range e.Content {
					env[get(kv, "Name").Value] = get(kv, "Value")
				}
			}
			out[res+"/"+get(c, "Name").Value] = env
		}
	}
	return out
}

// leaves returns the scalar values a node may take (every branch of !If).
func leaves(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	switch {
	case n.Tag == "!If" && len(n.Content) == 3:
		return append(leaves(n.Content[1]), leaves(n.Content[2])...)
	case n.Kind == yaml.ScalarNode && (strings.HasPrefix(n.Tag, "!!") || !strings.HasPrefix(n.Tag, "!")):
		return []string{n.Value}
	}
	return nil
}

func encode(t *testing.T, n *yaml.Node) string {
	t.Helper()
	var b strings.Builder
	if err := yaml.NewEncoder(&b).Encode(n); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// mentions reports whether n references name (Ref or !Ref) anywhere.
func mentions(n *yaml.Node, name string) bool {
	if n == nil {
		return false
	}
	if n.Tag == "!Ref" && n.Value == name {
		return true
	}
	for k, v := range pairs(n) {
		if k == "Ref" && v.Value == name {
			return true
		}
	}
	for _, c := range n.Content {
		if mentions(c, name) {
			return true
		}
	}
	return false
}

// imageFiles lists the files the final stage of a Dockerfile adds, with
// their sources.
func imageFiles(t *testing.T, dockerfile string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.EqualFold(f[0], "FROM") {
			files = map[string]string{} // only the final stage counts
		}
		if len(f) < 3 || (!strings.EqualFold(f[0], "ADD") && !strings.EqualFold(f[0], "COPY")) {
			continue
		}
		var args []string
		for _, a := range f[1:] {
			if !strings.HasPrefix(a, "--") {
				args = append(args, a)
			}
		}
		if len(args) == 2 {
			files[args[1]] = args[0]
		}
	}
	return files
}

// TestPostgresIsVerified: the store holds every CA and signing key, so a
// template that may run the CP on PostgreSQL must verify the server fully,
// with the RDS CA bundle the CP image carries.
func TestPostgresIsVerified(t *testing.T) {
	image := imageFiles(t, "../controlplane.Dockerfile")
	checked := 0
	for name, tpl := range loadAll(t) {
		for ctr, env := range containerEnv(tpl) {
			if !strings.Contains(encode(t, env["KUMA_STORE_TYPE"]), "postgres") {
				continue
			}
			checked++
			modes := leaves(env["KUMA_STORE_POSTGRES_TLS_MODE"])
			if len(modes) == 0 {
				t.Errorf("%s %s: may use PostgreSQL but sets no literal KUMA_STORE_POSTGRES_TLS_MODE (the CP's default is disable)", name, ctr)
			}
			for _, m := range modes {
				if m != "verifyFull" {
					t.Errorf("%s %s: KUMA_STORE_POSTGRES_TLS_MODE may be %q, want verifyFull", name, ctr, m)
				}
			}
			paths := leaves(env["KUMA_STORE_POSTGRES_TLS_CA_PATH"])
			if len(paths) != 1 {
				t.Errorf("%s %s: KUMA_STORE_POSTGRES_TLS_CA_PATH must name one file of the CP image, got %v", name, ctr, paths)
				continue
			}
			if src, ok := image[paths[0]]; !ok || src != rdsBundleURL {
				t.Errorf("%s %s: KUMA_STORE_POSTGRES_TLS_CA_PATH %s is not the RDS bundle in the CP image (images/controlplane.Dockerfile adds %v)", name, ctr, paths[0], image)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no template runs the CP on PostgreSQL; the check checked nothing")
	}
}

// TestServerIDUniquePerStack: a server ID every deployment shares lets a
// login signed for one deployment be replayed at another. The CP stack's
// server ID is the operator's choice or derived from the stack's ID, and
// every sidecar gets the CP stack's value.
func TestServerIDUniquePerStack(t *testing.T) {
	all := loadAll(t)
	cp := all["controlplane.yaml"]
	var param *yaml.Node
	for k, v := range pairs(get(cp.root, "Parameters")) {
		if k == "ServerId" {
			param = v
		}
	}
	if param == nil {
		t.Fatal("controlplane.yaml has no ServerId parameter")
	}
	if d := get(param, "Default"); d != nil && d.Value != "" {
		t.Errorf("parameter ServerId defaults to %q, a value every stack would share", d.Value)
	}
	if p := get(param, "AllowedPattern"); p == nil {
		t.Error("parameter ServerId has no AllowedPattern")
	} else {
		re := regexp.MustCompile(p.Value)
		for v, want := range map[string]bool{"": true, "prod-mesh-7f3a": true, "ecsmesh": false, "x": false, "has space x": false} {
			if re.MatchString(v) != want {
				t.Errorf("ServerId %q: allowed = %v, want %v", v, !want, want)
			}
		}
	}
	var cpValue *yaml.Node
	for ctr, env := range containerEnv(cp) {
		if v, ok := env["ECSMESH_AWSIAM_SERVER_ID"]; ok {
			if cpValue != nil {
				t.Fatalf("%s: a second CP container sets the server ID", ctr)
			}
			cpValue = v
		}
	}
	if cpValue == nil {
		t.Fatal("the CP's container does not set ECSMESH_AWSIAM_SERVER_ID")
	}
	for _, l := range leaves(cpValue) {
		t.Errorf("the CP's server ID may be the literal %q", l)
	}
	if !mentions(cpValue, "ServerId") || !mentions(cpValue, "AWS::StackId") {
		t.Errorf("the CP's server ID must be the ServerId parameter or derived from AWS::StackId:\n%s", encode(t, cpValue))
	}
	out := get(get(cp.root, "Outputs"), "ServerId")
	if out == nil || encode(t, get(out, "Value")) != encode(t, cpValue) {
		t.Errorf("output ServerId is not the CP's server ID:\n%s", encode(t, get(out, "Value")))
	}
	if exp := get(get(out, "Export"), "Name"); exp == nil || exp.Value != "${AWS::StackName}-ServerId" {
		t.Error("output ServerId must be exported as ${AWS::StackName}-ServerId")
	}
	sidecars := 0
	for name, tpl := range all {
		for ctr, env := range containerEnv(tpl) {
			if _, ok := env["KUMA_CONTROL_PLANE_URL"]; !ok {
				continue
			}
			sidecars++
			imp := get(env["ECSMESH_AWSIAM_SERVER_ID"], "Fn::ImportValue")
			if imp == nil || imp.Value != "${ControlPlaneStack}-ServerId" {
				t.Errorf("%s %s: ECSMESH_AWSIAM_SERVER_ID must be the CP stack's (Fn::ImportValue ${ControlPlaneStack}-ServerId)", name, ctr)
			}
		}
	}
	if sidecars == 0 {
		t.Fatal("no sidecar container found; the check checked nothing")
	}
}
