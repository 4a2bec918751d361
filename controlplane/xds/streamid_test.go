package xds

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

// go-control-plane numbers state-of-the-world and delta streams with two
// counters that both start at 1. Keyed by that number alone, an
// attacker's idle delta stream 1 would share its record with the victim's
// SotW stream 1, and a request naming the victim's node would be checked
// against the victim's own token — and answered with its key.
func TestDeltaAndSotWStreamIDsDoNotCollide(t *testing.T) {
	h := newHarness(t, nil)
	h.dataplane("victim-1", "10.0.0.1", "web", "http", "")
	h.dataplane("evil-1", "10.0.0.2", "evil", "http", "")
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(h.client)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+h.token("default", "evil-1"))
	// The attacker's delta stream (delta stream 1) opens and stays idle.
	ds, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _ := h.srv.streams.counts()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the attacker's delta stream never opened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The victim's SotW stream (SotW stream 1).
	victim := h.connect("default.victim-1", h.token("default", "victim-1"), false, nil)
	victim.waitFor(t, "victim config", func(c *adsclient.Client) bool { return c.Consistent() == nil })
	if err := ds.Send(&discovery.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "default.victim-1"}, TypeUrl: resourcev3.SecretType,
		ResourceNamesSubscribe: []string{generate.IdentitySecret}}); err != nil {
		t.Fatal(err)
	}
	resp, err := ds.Recv()
	if err != nil {
		t.Logf("attacker stream refused: %v", err)
		return
	}
	for _, r := range resp.GetResources() {
		if r.GetName() == generate.IdentitySecret {
			t.Fatalf("the attacker with evil-1's token received victim-1's identity secret (%d bytes)", len(r.GetResource().GetValue()))
		}
	}
	t.Fatalf("the attacker's request naming victim-1 was answered: %v", resp)
}
