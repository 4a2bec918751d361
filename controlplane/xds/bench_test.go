package xds

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
)

// Scale of the benchmarks: ECSMESH_BENCH_DATAPLANES (10,000),
// ECSMESH_BENCH_SERVICES (1,000), ECSMESH_BENCH_STREAMS (1,000).
func benchSize(env string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return def
}

// bigMesh is one mesh of dps dataplanes spread over services HTTP
// services, every dataplane online, ready and binding every VIP.
func bigMesh(dps, services int) *generate.Input {
	in := &generate.Input{
		Mesh: &resource.Mesh{Meta: resource.Meta{Type: resource.KindMesh, Name: "default"}}, Online: make(map[string]bool, dps),
		VIPs: make(map[string]netip.Addr, services), Domain: "mesh.local", VIPPort: 8080,
		JWKS:           []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
		TrustBundlePEM: []byte("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"),
	}
	for i := range services {
		in.VIPs[fmt.Sprintf("svc-%04d", i)] = netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
	}
	for i := range dps {
		name := fmt.Sprintf("dp-%05d", i)
		in.Dataplanes = append(in.Dataplanes, &resource.Dataplane{
			Meta: resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: name},
			Networking: resource.Networking{Address: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), Inbound: []resource.Inbound{{
				Port: 15000, ServicePort: 8080, Tags: map[string]string{resource.TagService: fmt.Sprintf("svc-%04d", i%services), resource.TagProtocol: "http"},
			}}},
		})
		in.Online[name] = true
	}
	return in
}

// buildAll builds the mesh and every node into a fresh cache.
func buildAll(tb testing.TB, in *generate.Input) (*meshCache, *generate.Builder) {
	b := generate.NewBuilder()
	m, err := b.Mesh(in)
	if err != nil {
		tb.Fatal(err)
	}
	nodes := make(map[string]*generate.Node, len(in.Dataplanes))
	b.BeginNodes()
	for _, dp := range in.Dataplanes {
		n, err := b.Node(m, dp, true)
		if err != nil {
			tb.Fatal(err)
		}
		nodes[dp.Name] = n
	}
	b.EndNodes()
	c := newMeshCache()
	c.setMesh(m, nodes)
	return c, b
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// benchBuildAll times building every node of in b.N times and reports
// ms/build-all and the CP heap per dataplane it holds; it returns the last
// cache.
func benchBuildAll(b *testing.B, in *generate.Input, dps int) *meshCache {
	base := heapInUse()
	b.ResetTimer()
	var c *meshCache
	var bld *generate.Builder
	for range b.N {
		c, bld = buildAll(b, in)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/build-all")
	held := heapInUse()
	runtime.KeepAlive(c)
	runtime.KeepAlive(bld)
	if held > base {
		b.ReportMetric(float64(held-base)/float64(dps)/1024, "KiB-heap/dataplane")
	}
	return c
}

// BenchmarkSnapshots10k: every dataplane's config from cold (mesh-wide
// resources once, per-node resources for each), and the CP heap it takes
// per dataplane. Certificates and identity tokens are issued when a
// sidecar connects and are not included (see the ca benchmarks).
func BenchmarkSnapshots10k(b *testing.B) {
	dps, services := benchSize("ECSMESH_BENCH_DATAPLANES", 10000), benchSize("ECSMESH_BENCH_SERVICES", 1000)
	in := bigMesh(dps, services)
	c := benchBuildAll(b, in, dps)

	// Rendering a node's outbound filter config (every route) at send time.

	v, _ := c.view(NodeID("default", "dp-00000"))
	r := generate.OutboundFilterConfig(v.mesh, v.node, nil)
	start := time.Now()
	a, err := r.Packed()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds()), "µs/outbound-render")
	b.ReportMetric(float64(len(a.GetValue()))/1024, "KiB/outbound-filter-config")

	// The same with a destination-bound JWT-SVID on every route it may
	// attach one to (at most defaultMaxRouteTokens).
	auds, _ := generate.TokenAudiences(v.mesh, v.node, defaultMaxRouteTokens)
	toks := make(generate.RouteTokens, len(auds))
	fake := strings.Repeat("x", 400) + "." + strings.Repeat("y", 200) + "." + strings.Repeat("z", 86)
	for _, aud := range auds {
		toks[aud] = generate.Token{Value: fake, ExpiresAt: time.Unix(4102444800, 0)}
	}
	r = generate.OutboundFilterConfig(v.mesh, v.node, toks)
	start = time.Now()
	if a, err = r.Packed(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds()), "µs/outbound-render-tokens")
	b.ReportMetric(float64(len(a.GetValue()))/1024, "KiB/outbound-filter-config-tokens")
	b.ReportMetric(float64(len(toks)), "route-tokens/dataplane")
}

// benchClient is a minimal ADS client: SotW, subscribes like Envoy to
// everything, ACKs without validating, and reports when the marker
// service's endpoints reach a wanted count.
type benchClient struct {
	bytes  atomic.Int64
	synced chan struct{}

	mu    sync.Mutex
	want  int
	hit   chan struct{}
	fired bool
}

// arm makes the client signal hit once the marker has want endpoints.
func (bc *benchClient) arm(want int) chan struct{} {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	bc.want, bc.hit, bc.fired = want, make(chan struct{}), false
	return bc.hit
}

func (bc *benchClient) observe(n int) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if !bc.fired && bc.hit != nil && n == bc.want {
		bc.fired = true
		close(bc.hit)
	}
}

func runBenchClient(ctx context.Context, conn *grpc.ClientConn, nodeID string, services int, marker string, bc *benchClient) error {
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	eds := make([]string, services)
	for i := range eds {
		eds[i] = fmt.Sprintf("svc-%04d", i)
	}
	node := &corev3.Node{Id: nodeID}
	reqs := []*discovery.DiscoveryRequest{
		{Node: node, TypeUrl: resourcev3.ClusterType}, {TypeUrl: resourcev3.ListenerType},
		{TypeUrl: resourcev3.EndpointType, ResourceNames: eds},
		{TypeUrl: resourcev3.SecretType, ResourceNames: []string{generate.IdentitySecret, generate.TrustBundleSecret}},
		{TypeUrl: resourcev3.ExtensionConfigType, ResourceNames: []string{generate.OutboundFilter, generate.InboundFilterPrefix + "15000"}},
	}
	names := map[string][]string{}
	for _, r := range reqs {
		names[r.TypeUrl] = r.ResourceNames
		if err := st.Send(r); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	var syncedOnce sync.Once
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		bc.bytes.Add(int64(proto.Size(resp)))
		seen[resp.TypeUrl] = true
		if resp.TypeUrl == resourcev3.EndpointType {
			for _, a := range resp.Resources {
				if cla := decodeCLA(a.Value); cla.name == marker {
					bc.observe(cla.endpoints)
				}
			}
		}
		if len(seen) == 4 { // all but SDS identity (no certificate in the benchmark)
			syncedOnce.Do(func() { close(bc.synced) })
		}
		if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: resp.TypeUrl, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce, ResourceNames: names[resp.TypeUrl]}); err != nil {
			return err
		}
	}
}

type claInfo struct {
	name      string
	endpoints int
}

func decodeCLA(b []byte) claInfo {
	cla := new(endpointv3.ClusterLoadAssignment)
	if err := proto.Unmarshal(b, cla); err != nil {
		return claInfo{}
	}
	n := 0
	for _, l := range cla.GetEndpoints() {
		n += len(l.GetLbEndpoints())
	}
	return claInfo{name: cla.GetClusterName(), endpoints: n}
}

// BenchmarkEndpointPropagation: N real gRPC ADS streams on loopback, all
// synced; one dataplane's inbound turns not ready; the time until the last
// stream has the new ClusterLoadAssignment. Also reports the bytes of the
// initial configuration per sidecar.
func BenchmarkEndpointPropagation(b *testing.B) {
	dps, services := benchSize("ECSMESH_BENCH_DATAPLANES", 10000), benchSize("ECSMESH_BENCH_SERVICES", 1000)
	streams := benchSize("ECSMESH_BENCH_STREAMS", 1000)
	in := bigMesh(dps, services)
	c, bld := buildAll(b, in)
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
	conns := make([]*grpc.ClientConn, 8)
	for i := range conns {
		if conns[i], err = grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20))); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	marker := "svc-0000"
	perService := dps / services
	var clients []*benchClient
	for i := range streams {
		bc := &benchClient{synced: make(chan struct{})}
		clients = append(clients, bc)
		go func() {
			_ = runBenchClient(ctx, conns[i%len(conns)], NodeID("default", fmt.Sprintf("dp-%05d", i)), services, marker, bc)
		}()
	}
	for _, bc := range clients {
		<-bc.synced
	}
	var total int64
	for _, bc := range clients {
		total += bc.bytes.Load()
	}
	var sum time.Duration
	b.ResetTimer()
	for iter := range b.N {
		b.StopTimer()
		want, state := perService-1, resource.StateNotReady
		if iter%2 == 1 {
			want, state = perService, resource.StateReady
		}
		hits := make([]chan struct{}, len(clients))
		for i, bc := range clients {
			hits[i] = bc.arm(want)
		}
		dp := *in.Dataplanes[0]
		dp.Networking.Inbound = []resource.Inbound{dp.Networking.Inbound[0]}
		dp.Networking.Inbound[0].State = state
		in.Dataplanes[0] = &dp
		b.StartTimer()
		start := time.Now()
		m, err := bld.Mesh(in)
		if err != nil {
			b.Fatal(err)
		}
		nodes := make(map[string]*generate.Node, len(in.Dataplanes))
		bld.BeginNodes()
		for _, d := range in.Dataplanes {
			if nodes[d.Name], err = bld.Node(m, d, true); err != nil {
				b.Fatal(err)
			}
		}
		bld.EndNodes()
		c.setMesh(m, nodes)
		for _, h := range hits {
			<-h
		}
		sum += time.Since(start)
	}
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(b.N), "ms/propagation")
	b.ReportMetric(float64(total)/float64(streams)/1024, "KiB-initial-sync/sidecar")
}
