package xds

import (
	"context"
	"fmt"
	"net"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// withBenchPolicies adds to in, per service, a MeshTimeout, a MeshRetry and
// a MeshCircuitBreaker (each a Mesh-wide policy with one to entry for the
// service), and for every tenth service a MeshHTTPRoute splitting its
// traffic 90/10 between its version v1 and v2 dataplanes (tagged
// alternately).
func withBenchPolicies(tb testing.TB, in *generate.Input, services int) {
	for i, dp := range in.Dataplanes {
		v := "v1"
		if i%2 == 1 {
			v = "v2"
		}
		dp.Networking.Inbound[0].Tags["version"] = v
	}
	for i := range services {
		svc := fmt.Sprintf("svc-%04d", i)
		docs := []string{
			`{"type":"MeshTimeout","mesh":"default","name":"timeout-` + svc + `","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"MeshService","name":"` + svc + `"},
			  "default":{"connectionTimeout":"2s","http":{"requestTimeout":"5s"}}}]}}`,
			`{"type":"MeshRetry","mesh":"default","name":"retry-` + svc + `","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"MeshService","name":"` + svc + `"},
			  "default":{"http":{"numRetries":3,"retryOn":["5xx"]}}}]}}`,
			`{"type":"MeshCircuitBreaker","mesh":"default","name":"cb-` + svc + `","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"MeshService","name":"` + svc + `"},
			  "default":{"connectionLimits":{"maxConnections":1024},"outlierDetection":{"detectors":{"totalFailures":{"consecutive":5}}}}}]}}`,
		}
		if i%10 == 0 {
			docs = append(docs, `{"type":"MeshHTTPRoute","mesh":"default","name":"split-`+svc+`","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"MeshService","name":"`+svc+`"},
			  "rules":[{"matches":[{"path":{"type":"PathPrefix","value":"/"}}],"default":{"backendRefs":[
			    {"kind":"MeshServiceSubset","name":"`+svc+`","tags":{"version":"v1"},"weight":90},
			    {"kind":"MeshServiceSubset","name":"`+svc+`","tags":{"version":"v2"},"weight":10}]}}]}]}}`)
		}
		for _, d := range docs {
			obj, _, err := resource.DecodeOne([]byte(d))
			if err != nil {
				tb.Fatal(err)
			}
			in.Policies.Add(obj.(resource.Policy))
		}
	}
}

// BenchmarkSnapshots10kPolicies is BenchmarkSnapshots10k with traffic
// policies on every service (see withBenchPolicies): what they add to
// build-all time and to the CP heap per dataplane.
func BenchmarkSnapshots10kPolicies(b *testing.B) {
	dps, services := benchSize("ECSMESH_BENCH_DATAPLANES", 10000), benchSize("ECSMESH_BENCH_SERVICES", 1000)
	in := bigMesh(dps, services)
	withBenchPolicies(b, in, services)
	c := benchBuildAll(b, in, dps)
	v, _ := c.view(NodeID("default", "dp-00000"))
	b.ReportMetric(float64(len(v.mesh.ViewOf(v.node.ViewKey).Clusters)), "clusters/dataplane")
}

// BenchmarkInitialSync: the bytes of a sidecar's first full configuration
// over a real ADS stream, with every service of the mesh reachable and
// with reachableServices naming 10 of them.
func BenchmarkInitialSync(b *testing.B) {
	dps, services := benchSize("ECSMESH_BENCH_DATAPLANES", 10000), benchSize("ECSMESH_BENCH_SERVICES", 1000)
	for _, reach := range []int{0, 10} {
		name := "reachable=all"
		if reach > 0 {
			name = fmt.Sprintf("reachable=%d", reach)
		}
		b.Run(name, func(b *testing.B) {
			in := bigMesh(dps, services)
			if reach > 0 {
				for i, dp := range in.Dataplanes {
					list := make([]string, reach)
					for j := range list {
						list[j] = fmt.Sprintf("svc-%04d", (i+j)%services)
					}
					dp.Networking.TransparentProxying = &resource.TransparentProxying{ReachableServices: list}
				}
			}
			c, _ := buildAll(b, in)
			b.ResetTimer()
			var total int64
			for range b.N {
				total += initialSyncBytes(b, c, services)
			}
			b.ReportMetric(float64(total)/float64(b.N)/1024, "KiB-initial-sync/sidecar")
		})
	}
}

// initialSyncBytes opens one ADS stream for dp-00001 and returns the bytes
// it receives until every subscribed type has answered.
func initialSyncBytes(b *testing.B, c *meshCache, services int) int64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gs := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, c, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	bc := &benchClient{synced: make(chan struct{})}
	go func() { _ = runBenchClient(ctx, conn, NodeID("default", "dp-00001"), services, "svc-0000", bc) }()
	<-bc.synced
	return bc.bytes.Load()
}
