package xds

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/ca"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/vip"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

const wait = 20 * time.Second

type harness struct {
	t      *testing.T
	st     *memory.Store
	tokens *token.Issuer
	srv    *Server
	addr   string
	client *tls.Config
	alloc  *vip.Allocator
}

func selfSigned(t testing.TB) (*tls.Config, *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ecsmesh-cp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	st := memory.New(nil)
	t.Cleanup(func() { st.Close() })
	tokens, err := token.New(token.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.New(ca.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, clientTLS := selfSigned(t)
	o := Options{Store: st, Tokens: tokens, CA: authority, TLS: serverTLS, Domain: "mesh.local", SyncInterval: 100 * time.Millisecond, Grace: 200 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	alloc, err := vip.NewAllocator(st, []netip.Prefix{netip.MustParsePrefix("127.1.0.0/16")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: st, tokens: tokens, srv: srv, client: clientTLS, alloc: alloc}
	h.apply(resource.KindMesh, "", "default", `{"type":"Mesh","name":"default"}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

func (h *harness) apply(kind, mesh, name, doc string) {
	h.t.Helper()
	if _, err := store.UpsertRecord(context.Background(), h.st, store.Record{Key: store.Key{Kind: kind, Mesh: mesh, Name: name}, Spec: []byte(doc)}); err != nil {
		h.t.Fatal(err)
	}
}

// dataplane stores a Dataplane serving service on port and gives the
// service a VIP.
func (h *harness) dataplane(name, addr, service, protocol string, labels string) {
	h.t.Helper()
	if labels == "" {
		labels = "{}"
	}
	h.apply(resource.KindDataplane, "default", name, `{"type":"Dataplane","mesh":"default","name":"`+name+`","labels":`+labels+`,
	  "networking":{"address":"`+addr+`","inbound":[{"port":15000,"servicePort":8080,"tags":{"kuma.io/service":"`+service+`","kuma.io/protocol":"`+protocol+`"}}]}}`)
	if _, err := h.alloc.Ensure(context.Background(), "default", []string{service}); err != nil {
		h.t.Fatal(err)
	}
}

// token issues an operator-applied Dataplane's token: for the SPIFFE ID
// the stored Dataplane has under the mesh's default identity (or
// workload/<name> when it is not stored).
func (h *harness) token(mesh, name string) string {
	h.t.Helper()
	id := "spiffe://" + mesh + ".mesh.local/workload/" + name
	if rec, err := h.st.Get(context.Background(), store.Key{Kind: resource.KindDataplane, Mesh: mesh, Name: name}); err == nil {
		dp, err := resource.Unmarshal(resource.KindDataplane, rec.Spec)
		if err != nil {
			h.t.Fatal(err)
		}
		sid, err := resource.SPIFFEID(&resource.Mesh{Meta: resource.Meta{Name: mesh}}, nil, dp.(*resource.Dataplane))
		if err != nil {
			h.t.Fatal(err)
		}
		id = sid.String()
	}
	raw, _, err := h.tokens.IssueDataplaneToken(context.Background(), token.DataplaneClaims{Mesh: mesh, Name: name, SPIFFEID: id})
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

type running struct {
	*adsclient.Client
	cancel context.CancelFunc
	done   chan error
}

func (h *harness) connect(nodeID, tok string, delta bool, md map[string]any) *running {
	h.t.Helper()
	c, err := adsclient.New(adsclient.Config{Address: h.addr, TLS: h.client, NodeID: nodeID, Delta: delta, Metadata: md,
		Token: func() (string, error) { return tok, nil }})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Client: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-r.done; c.Close() })
	return r
}

func (r *running) waitFor(t *testing.T, what string, cond func(*adsclient.Client) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Wait(ctx, cond); err != nil {
		_, _, nack := r.Counts()
		held := map[string][]string{}
		for _, typ := range adsclient.Types {
			for n := range r.Resources(typ) {
				held[typ] = append(held[typ], n)
			}
		}
		t.Fatalf("%s: %v (last NACK: %v; consistent: %v; held: %v)", what, err, nack, r.Consistent(), held)
	}
}

func endpoints(c *adsclient.Client, svc string) int {
	a := c.Resources(resourcev3.EndpointType)[svc]
	if a == nil {
		return -1
	}
	var cla endpointv3.ClusterLoadAssignment
	if a.UnmarshalTo(&cla) != nil {
		return -1
	}
	n := 0
	for _, l := range cla.GetEndpoints() {
		n += len(l.GetLbEndpoints())
	}
	return n
}

func TestADSDeliversConsistentConfig(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			h := newHarness(t, nil)
			h.dataplane("web-1", "10.0.0.1", "web", "http", "")
			h.dataplane("api-1", "10.0.0.2", "api", "http", "")
			web := h.connect("default.web-1", h.token("default", "web-1"), delta, map[string]any{envoybootstrap.MetaBindOutbounds: true})
			web.waitFor(t, "consistent config", func(c *adsclient.Client) bool {
				ext := c.Resources(resourcev3.ExtensionConfigType)[generate.OutboundFilter]
				return c.Consistent() == nil && c.Resources(resourcev3.SecretType)[generate.IdentitySecret] != nil &&
					c.Resources(resourcev3.ListenerType)["outbound:127.1.0.2:8080"] != nil && endpoints(c, "web") == 1 &&
					ext != nil && strings.Contains(string(ext.GetValue()), `"token":"ey`)
			})
			if _, nacks, err := web.Counts(); nacks != 0 {
				t.Fatalf("NACKs: %d (%v)", nacks, err)
			}

			// api-1 connects: its endpoint appears on web's stream.
			if endpoints(web.Client, "api") != 0 {
				t.Fatalf("api has endpoints before its sidecar connected")
			}
			api := h.connect("default.api-1", h.token("default", "api-1"), delta, nil)
			api.waitFor(t, "api config", func(c *adsclient.Client) bool { return c.Consistent() == nil })
			web.waitFor(t, "api endpoint", func(c *adsclient.Client) bool { return endpoints(c, "api") == 1 })

			// Health sync marks it not ready: the endpoint goes.
			h.apply(resource.KindDataplane, "default", "api-1", `{"type":"Dataplane","mesh":"default","name":"api-1",
			  "networking":{"address":"10.0.0.2","inbound":[{"port":15000,"servicePort":8080,"state":"NotReady","tags":{"kuma.io/service":"api","kuma.io/protocol":"http"}}]}}`)
			web.waitFor(t, "api endpoint removed", func(c *adsclient.Client) bool { return endpoints(c, "api") == 0 })

			// A new service becomes reachable without reconnecting.
			h.dataplane("billing-1", "10.0.0.3", "billing", "http", "")
			web.waitFor(t, "new service", func(c *adsclient.Client) bool {
				ext := c.Resources(resourcev3.ExtensionConfigType)[generate.OutboundFilter]
				return c.Resources(resourcev3.ClusterType)["billing"] != nil && c.Resources(resourcev3.ListenerType)["outbound:127.1.0.3:8080"] != nil &&
					ext != nil && strings.Contains(string(ext.GetValue()), "billing.mesh.local") && c.Consistent() == nil
			})
			if _, nacks, err := web.Counts(); nacks != 0 {
				t.Fatalf("NACKs: %d (%v)", nacks, err)
			}

			// Inspect shows what the stream holds.
			out, err := h.srv.InspectDataplane(context.Background(), "default", "web-1")
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Version   string                       `json:"version"`
				Resources map[string][]json.RawMessage `json:"resources"`
			}
			if err := json.Unmarshal(out, &doc); err != nil || doc.Version == "" || len(doc.Resources[resourcev3.ClusterType]) != 4 {
				t.Fatalf("inspect: %v %s", err, out)
			}
		})
	}
}

func streamCode(t *testing.T, r *running) codes.Code {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		var s interface{ GRPCStatus() *status.Status }
		if errors.As(err, &s) {
			return s.GRPCStatus().Code()
		}
		t.Fatalf("stream ended with %v", err)
	case <-time.After(wait):
		t.Fatal("stream not closed")
	}
	return codes.OK
}

func TestStreamAuthentication(t *testing.T) {
	h := newHarness(t, nil)
	h.dataplane("web-1", "10.0.0.1", "web", "http", "")
	h.dataplane("api-1", "10.0.0.2", "api", "http", "")
	for _, tc := range []struct {
		name, node, token string
		want              codes.Code
		reason            string // counted in ecsmesh_xds_streams_refused_total
	}{
		{"no token", "default.web-1", "", codes.Unauthenticated, refusedNoToken},
		{"garbage token", "default.web-1", "not.a.jwt", codes.Unauthenticated, refusedInvalidToken},
		{"node ID of another dataplane", "default.api-1", h.token("default", "web-1"), codes.PermissionDenied, refusedNodeMismatch},
		{"node ID of another mesh", "other.web-1", h.token("default", "web-1"), codes.PermissionDenied, refusedNodeMismatch},
		{"unknown dataplane", "default.ghost", h.token("default", "ghost"), codes.NotFound, refusedNotStored},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(h.srv.metrics.refused.WithLabelValues(tc.reason))
			r := h.connect(tc.node, tc.token, false, nil)
			if got := streamCode(t, r); got != tc.want {
				t.Fatalf("code %v, want %v", got, tc.want)
			}
			if got := testutil.ToFloat64(h.srv.metrics.refused.WithLabelValues(tc.reason)) - before; got != 1 {
				t.Errorf("refusals counted for %s: %v, want 1", tc.reason, got)
			}
			if len(r.Resources(resourcev3.ClusterType)) != 0 {
				t.Fatal("refused stream received resources")
			}
		})
	}
}

func TestDeletedDataplaneStreamClosed(t *testing.T) {
	h := newHarness(t, nil)
	h.dataplane("web-1", "10.0.0.1", "web", "http", "")
	web := h.connect("default.web-1", h.token("default", "web-1"), false, nil)
	web.waitFor(t, "config", func(c *adsclient.Client) bool { return c.Consistent() == nil })
	if err := store.DeleteRecord(context.Background(), h.st, store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-1"}, 0); err != nil {
		t.Fatal(err)
	}
	if got := streamCode(t, web); got != codes.PermissionDenied {
		t.Fatalf("code %v, want PermissionDenied", got)
	}
}

func TestGraceDeletesOnlyBootstrapDataplanes(t *testing.T) {
	h := newHarness(t, nil)
	h.dataplane("boot-1", "10.0.0.1", "web", "http", `{"ecsmesh.io/origin":"bootstrap"}`)
	h.dataplane("op-1", "10.0.0.2", "web", "http", "")
	boot := h.connect("default.boot-1", h.token("default", "boot-1"), false, nil)
	op := h.connect("default.op-1", h.token("default", "op-1"), false, nil)
	boot.waitFor(t, "config", func(c *adsclient.Client) bool { return endpoints(c, "web") == 2 })
	op.waitFor(t, "config", func(c *adsclient.Client) bool { return endpoints(c, "web") == 2 })
	// A draining agent marks its inbounds not ready (health sync) before
	// its Envoy stops: that write must not defer the deletion.
	h.apply(resource.KindDataplane, "default", "boot-1", `{"type":"Dataplane","mesh":"default","name":"boot-1","labels":{"ecsmesh.io/origin":"bootstrap"},
	  "networking":{"address":"10.0.0.1","inbound":[{"port":15000,"servicePort":8080,"state":"NotReady","tags":{"kuma.io/service":"web","kuma.io/protocol":"http"}}]}}`)
	op.waitFor(t, "boot-1 not ready", func(c *adsclient.Client) bool { return endpoints(c, "web") == 1 })
	boot.cancel()
	op.cancel()
	ctx := context.Background()
	deadline := time.Now().Add(wait)
	for {
		_, err := h.st.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "boot-1"})
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bootstrap dataplane not deleted after the grace")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := h.st.Get(ctx, store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "op-1"}); err != nil {
		t.Fatalf("operator dataplane: %v", err)
	}
	out, err := h.srv.InspectDataplane(ctx, "default", "op-1")
	if err != nil || !strings.Contains(string(out), `"clusterName": "web"`) && !strings.Contains(string(out), `"clusterName":"web"`) {
		t.Fatalf("inspect of an offline dataplane: %v", err)
	}
}

// TestReconnectedStreamResubscribes: a client whose stream ends opens a
// new one and, like Envoy, subscribes to its named resources again, so
// changes to them (here the ECDS filter config) still arrive.
func TestReconnectedStreamResubscribes(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			h := newHarness(t, nil)
			h.dataplane("web-1", "10.0.0.1", "web", "http", "")
			first := h.connect("default.web-1", h.token("default", "web-1"), delta, map[string]any{envoybootstrap.MetaBindOutbounds: true})
			first.waitFor(t, "consistent config", func(c *adsclient.Client) bool {
				return c.Consistent() == nil && c.Resources(resourcev3.ExtensionConfigType)[generate.OutboundFilter] != nil
			})
			first.cancel()
			<-first.done
			first.done <- nil
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- first.Run(ctx) }()
			defer func() { cancel(); <-done }()
			h.dataplane("billing-1", "10.0.0.3", "billing", "http", "")
			first.waitFor(t, "the new service in the filter config after reconnecting", func(c *adsclient.Client) bool {
				ext := c.Resources(resourcev3.ExtensionConfigType)[generate.OutboundFilter]
				return ext != nil && strings.Contains(string(ext.GetValue()), "billing.mesh.local") && c.Consistent() == nil
			})
		})
	}
}
