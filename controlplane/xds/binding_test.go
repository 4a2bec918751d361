package xds

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"regexp"
	"sync"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/controlplane/xds/generate"
	"github.com/ecsmesh/ecsmesh/internal/test/adsclient"
)

const (
	redisID = "spiffe://default.mesh.local/workload/redis"
	webID   = "spiffe://default.mesh.local/workload/web"
)

var (
	redisOwner = &resource.Owner{RoleARN: "arn:aws:iam::111122223333:role/redis", RoleID: "AROAREDIS", SPIFFEID: redisID, ProxyType: resource.ProxyTypeDataplane}
	webOwner   = &resource.Owner{RoleARN: "arn:aws:iam::111122223333:role/web", RoleID: "AROAWEB", SPIFFEID: webID, ProxyType: resource.ProxyTypeDataplane}
)

// ownedDataplane stores a Dataplane of service on addr owned by owner (nil:
// applied by an operator).
func (h *harness) ownedDataplane(name, addr, service string, owner *resource.Owner) {
	h.t.Helper()
	dp := &resource.Dataplane{
		Meta:  resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: name},
		Owner: owner,
		Networking: resource.Networking{Address: addr, Inbound: []resource.Inbound{{Port: 15000, ServicePort: 8080,
			Tags: map[string]string{resource.TagService: service, resource.TagProtocol: "http"}}}},
	}
	b, err := resource.Marshal(dp)
	if err != nil {
		h.t.Fatal(err)
	}
	h.apply(resource.KindDataplane, "default", name, string(b))
	if _, err := h.alloc.Ensure(context.Background(), "default", []string{service}); err != nil {
		h.t.Fatal(err)
	}
	waitServed(h.t, h.srv, name, addr, service, owner)
}

// waitServed waits until srv serves the Dataplane name as stored: its
// address, service and owner.
func waitServed(t *testing.T, srv *Server, name, addr, service string, owner *resource.Owner) {
	t.Helper()
	waitUntil(t, "the server did not pick up Dataplane "+name, func() bool {
		srv.access.mu.Lock()
		defer srv.access.mu.Unlock()
		b, ok := srv.access.bindings["default"][name]
		if !ok || b.dp.Networking.Address != addr || b.dp.Services()[0] != service || (b.owner == nil) != (owner == nil) {
			return false
		}
		return owner == nil || *b.owner == *owner
	})
}

// claimsToken signs a dataplane token with exactly these claims.
func (h *harness) claimsToken(c token.DataplaneClaims) string {
	h.t.Helper()
	raw, _, err := h.tokens.IssueDataplaneToken(context.Background(), c)
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

// received records every identity a stream was sent: the URI SANs of the
// X.509 SVIDs, whether a private key came with them, and the subjects of
// the JWT-SVIDs in the filter configuration.
type received struct {
	mu    sync.Mutex
	ids   map[string]bool
	nkeys int
}

var tokenField = regexp.MustCompile(`"token":"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.`)

func (rc *received) record(typeURL string, res map[string]*anypb.Any) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for name, a := range res {
		switch {
		case typeURL == resourcev3.SecretType && name == generate.IdentitySecret:
			var s tlsv3.Secret
			if err := a.UnmarshalTo(&s); err != nil {
				return err
			}
			if len(s.GetTlsCertificate().GetPrivateKey().GetInlineBytes()) > 0 {
				rc.nkeys++
			}
			block, _ := pem.Decode(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
			if block == nil {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return err
			}
			for _, u := range cert.URIs {
				rc.ids[u.String()] = true
			}
		case typeURL == resourcev3.ExtensionConfigType:
			for _, m := range tokenField.FindAllSubmatch(a.GetValue(), -1) {
				payload, err := base64.RawURLEncoding.DecodeString(string(m[2]))
				if err != nil {
					return err
				}
				var c struct {
					Sub string `json:"sub"`
				}
				if err := json.Unmarshal(payload, &c); err != nil {
					return err
				}
				rc.ids[c.Sub] = true
			}
		}
	}
	return nil
}

func (rc *received) has(id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ids[id]
}

func (rc *received) keys() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.nkeys
}

func (rc *received) snapshot() (map[string]bool, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]bool{}
	for k := range rc.ids {
		out[k] = true
	}
	return out, rc.nkeys
}

// connectRecording is connect with every response recorded.
// Every stream binds outbounds, so it is also sent the JWT-SVID.
func (h *harness) connectRecording(nodeID, tok string, delta bool) (*running, *received) {
	h.t.Helper()
	rc := &received{ids: map[string]bool{}}
	c, err := adsclient.New(adsclient.Config{Address: h.addr, TLS: h.client, NodeID: nodeID, Delta: delta,
		Metadata: map[string]any{envoybootstrap.MetaBindOutbounds: true}, Token: func() (string, error) { return tok, nil }, Reject: rc.record})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Client: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-r.done; c.Close() })
	return r, rc
}

// TestStreamBoundToDataplaneIdentity: a token that names a Dataplane but
// was issued for another identity, role or proxy type is refused before
// anything of that Dataplane is sent (the takeover of issue 12: web's
// token for the name redis-1 used to receive redis's SVID and key).
func TestStreamBoundToDataplaneIdentity(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			h := newHarness(t, nil)
			h.ownedDataplane("redis-1", "10.0.0.5", "redis", redisOwner)
			h.ownedDataplane("redis-op", "10.0.0.6", "redis", nil)
			for _, tc := range []struct {
				name   string
				claims token.DataplaneClaims
				reason string // "" means accepted
			}{
				{"web's SPIFFE ID and RoleId for redis-1", token.DataplaneClaims{Mesh: "default", Name: "redis-1", SPIFFEID: webID, RoleARN: webOwner.RoleARN, RoleID: webOwner.RoleID}, refusedSPIFFEMismatch},
				{"redis's SPIFFE ID with web's RoleId", token.DataplaneClaims{Mesh: "default", Name: "redis-1", SPIFFEID: redisID, RoleARN: webOwner.RoleARN, RoleID: webOwner.RoleID}, refusedOwnerMismatch},
				{"redis's SPIFFE ID without a RoleId", token.DataplaneClaims{Mesh: "default", Name: "redis-1", SPIFFEID: redisID}, refusedOwnerMismatch},
				{"ingress token for a dataplane", token.DataplaneClaims{Mesh: "default", Name: "redis-1", SPIFFEID: redisID, RoleID: redisOwner.RoleID, ProxyType: resource.ProxyTypeIngress}, refusedProxyTypeMismatch},
				{"operator-applied redis, web's SPIFFE ID", token.DataplaneClaims{Mesh: "default", Name: "redis-op", SPIFFEID: webID, RoleID: webOwner.RoleID}, refusedSPIFFEMismatch},
				{"owner's token", token.DataplaneClaims{Mesh: "default", Name: "redis-1", SPIFFEID: redisID, RoleARN: redisOwner.RoleARN, RoleID: redisOwner.RoleID}, ""},
				{"operator-applied, matching SPIFFE ID", token.DataplaneClaims{Mesh: "default", Name: "redis-op", SPIFFEID: redisID}, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := testutil.ToFloat64(h.srv.metrics.refused.WithLabelValues(tc.reason))
					r, rc := h.connectRecording(NodeID(tc.claims.Mesh, tc.claims.Name), h.claimsToken(tc.claims), delta)
					if tc.reason == "" {
						r.waitFor(t, "the owner's identity", func(c *adsclient.Client) bool {
							return c.Consistent() == nil && rc.has(redisID) && rc.keys() > 0 && c.Resources(resourcev3.ExtensionConfigType)[generate.OutboundFilter] != nil
						})
						return
					}
					if got := streamCode(t, r); got != codes.PermissionDenied {
						t.Fatalf("code %v, want PermissionDenied", got)
					}
					if got := testutil.ToFloat64(h.srv.metrics.refused.WithLabelValues(tc.reason)) - before; got != 1 {
						t.Errorf("refusals counted for %s: %v, want 1", tc.reason, got)
					}
					ids, keys := rc.snapshot()
					if len(ids) != 0 || keys != 0 {
						t.Fatalf("refused stream received identities %v and %d private keys", ids, keys)
					}
					for _, typ := range adsclient.Types {
						if n := len(r.Resources(typ)); n != 0 {
							t.Fatalf("refused stream received %d resources of %s", n, typ)
						}
					}
				})
			}
		})
	}
}

// TestStreamClosedWhenBindingBreaks: a stream that was valid is closed as
// soon as its Dataplane is replaced by another owner or identity, and never
// receives the new identity.
func TestStreamClosedWhenBindingBreaks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		next   func(h *harness)
		reason string
	}{
		{"replaced by web's role as web", func(h *harness) { h.ownedDataplane("redis-1", "10.0.0.5", "web", webOwner) }, refusedSPIFFEMismatch},
		{"same identity, another role", func(h *harness) {
			o := *redisOwner
			o.RoleID = "AROAOTHER"
			h.ownedDataplane("redis-1", "10.0.0.5", "redis", &o)
		}, refusedOwnerMismatch},
		{"re-applied by an operator as web", func(h *harness) { h.ownedDataplane("redis-1", "10.0.0.5", "web", nil) }, refusedSPIFFEMismatch},
	} {
		for _, delta := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/sotw", true: "/delta"}[delta], func(t *testing.T) {
				h := newHarness(t, nil)
				h.ownedDataplane("redis-1", "10.0.0.5", "redis", redisOwner)
				h.ownedDataplane("web-1", "10.0.0.7", "web", webOwner)
				tok := h.claimsToken(token.DataplaneClaims{Mesh: "default", Name: "redis-1", SPIFFEID: redisID, RoleARN: redisOwner.RoleARN, RoleID: redisOwner.RoleID})
				r, rc := h.connectRecording("default.redis-1", tok, delta)
				r.waitFor(t, "redis's identity", func(c *adsclient.Client) bool {
					return c.Consistent() == nil && rc.has(redisID)
				})
				before := testutil.ToFloat64(h.srv.metrics.closed.WithLabelValues(tc.reason))
				tc.next(h)
				if got := streamCode(t, r); got != codes.PermissionDenied {
					t.Fatalf("code %v, want PermissionDenied", got)
				}
				if got := testutil.ToFloat64(h.srv.metrics.closed.WithLabelValues(tc.reason)) - before; got != 1 {
					t.Errorf("closes counted for %s: %v, want 1", tc.reason, got)
				}
				if ids, _ := rc.snapshot(); len(ids) != 1 || !ids[redisID] {
					t.Fatalf("stream received identities %v, want only %s", ids, redisID)
				}
				// The old token cannot come back either.
				again, rc2 := h.connectRecording("default.redis-1", tok, delta)
				if got := streamCode(t, again); got != codes.PermissionDenied {
					t.Fatalf("reconnect: code %v, want PermissionDenied", got)
				}
				if ids, keys := rc2.snapshot(); len(ids) != 0 || keys != 0 {
					t.Fatalf("reconnected stream received %v", ids)
				}
			})
		}
	}
}
