package dataplane_test

import (
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/bootstrap/dataplane"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
)

const tmpl = `type: Dataplane
mesh: default
name: "{{ dpname }}"
labels: {kuma.io/workload: web, ecs.cluster: "{{cluster}}", az: "{{ .az }}"}
networking:
  address: {{ address }}
  inbound:
  - port: 15000
    servicePort: {{ appPort }}
    tags: {kuma.io/service: web, kuma.io/protocol: http}
`

func task() ecsmeta.Task {
	return ecsmeta.Task{ARN: "arn:aws:ecs:us-east-1:1:task/prod/abc123", Cluster: "arn:aws:ecs:us-east-1:1:cluster/prod", Family: "web",
		AvailabilityZone: "us-east-1b", Containers: []ecsmeta.Container{{Name: "sidecar", IPv4: []string{"10.0.1.23"}}}}
}

func TestBuild(t *testing.T) {
	vars := dataplane.Merge(dataplane.TaskVars(task()), map[string]string{"appPort": "8080"})
	dp, err := dataplane.Build(tmpl, vars)
	if err != nil {
		t.Fatal(err)
	}
	if dp.Name != "web-abc123" || dp.Networking.Address != "10.0.1.23" || dp.Networking.Inbound[0].ServicePort != 8080 ||
		dp.Labels["ecs.cluster"] != "prod" || dp.Labels["az"] != "us-east-1b" {
		t.Fatalf("dp = %+v", dp)
	}
}

func TestErrors(t *testing.T) {
	base := dataplane.TaskVars(task())
	tests := []struct {
		name, tmpl string
		vars       map[string]string
		want       string
	}{
		{"unknown variable", tmpl, base, `template variable "appPort" (line 9) not set; pass --dataplane-var`},
		{"malformed", "name: {{ a b }}\n", base, "malformed template variable near line 1"},
		{"invalid resource", "type: Dataplane\nmesh: default\nname: x\nnetworking: {address: '{{ address }}'}\n", base, "networking.inbound: must have at least one inbound"},
		{"not a dataplane", "type: Mesh\nname: default\n", base, "it must be a Dataplane"},
		{"user var overrides", "type: Dataplane\nmesh: default\nname: x\nnetworking: {address: '{{ address }}', inbound: [{port: 1, tags: {kuma.io/service: a}}]}\n",
			dataplane.Merge(base, map[string]string{"address": "not-an-ip"}), "must be an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dataplane.Build(tt.tmpl, tt.vars)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseVar(t *testing.T) {
	tests := []struct {
		in, name, value string
		ok              bool
	}{
		{"a=b", "a", "b", true},
		{"a=b=c", "a", "b=c", true},
		{"a=", "a", "", true},
		{"=b", "", "", false},
		{"ab", "", "", false},
		{"a b=c", "", "", false},
	}
	for _, tt := range tests {
		n, v, err := dataplane.ParseVar(tt.in)
		if (err == nil) != tt.ok || n != tt.name || v != tt.value {
			t.Errorf("ParseVar(%q) = %q %q %v", tt.in, n, v, err)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add(tmpl, "appPort", "8080")
	f.Add("{{", "a", "b")
	f.Add("{{ a }}{{b}}", "a", "{{ b }}")
	f.Fuzz(func(t *testing.T, s, k, v string) {
		out, err := dataplane.Render(s, map[string]string{k: v})
		if err == nil && !strings.Contains(v, "{{") && strings.Contains(out, "{{") && !strings.Contains(s, "{{") {
			t.Fatalf("rendering introduced {{: %q", out)
		}
		_, _ = dataplane.Build(s, map[string]string{k: v})
	})
}
