package agent

import (
	"slices"
	"testing"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

func TestEnvoyEnv(t *testing.T) {
	dp := &resource.Dataplane{Networking: resource.Networking{Address: "10.0.1.10", Inbound: []resource.Inbound{
		{Port: 15000, Tags: map[string]string{resource.TagService: "web"}},
		{Port: 15001, Tags: map[string]string{resource.TagService: "admin"}},
	}}}
	if got, want := envoyEnv(dp), []string{"ECSMESH_ADDRESS=10.0.1.10", "ECSMESH_SERVICE=web"}; !slices.Equal(got, want) {
		t.Errorf("envoyEnv = %v, want %v", got, want)
	}
	if got := envoyEnv(&resource.Dataplane{Networking: resource.Networking{Address: "10.0.1.11"}}); !slices.Equal(got, []string{"ECSMESH_ADDRESS=10.0.1.11"}) {
		t.Errorf("without inbounds: %v", got)
	}
}
