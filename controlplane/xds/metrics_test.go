package xds

import "testing"

func TestShortType(t *testing.T) {
	for in, want := range map[string]string{
		"type.googleapis.com/envoy.config.cluster.v3.Cluster":                  "cluster",
		"type.googleapis.com/envoy.config.listener.v3.Listener":                "listener",
		"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment":   "endpoint",
		"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "secret",
		"type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig":        "extension",
		"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":         "other",
	} {
		if got := shortType(in); got != want {
			t.Errorf("shortType(%s) = %s, want %s", in, got, want)
		}
	}
}
