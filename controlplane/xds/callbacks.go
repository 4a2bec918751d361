package xds

import (
	"context"
	"log/slog"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
)

// streamCallbacks follow go-control-plane's stream events: they register
// the streams the authenticator admitted, bind each to its node on its
// first request (token against the stored Dataplane, session record,
// identity) and, when a node's last stream on this replica closes,
// release its identity and record the disconnect.
type streamCallbacks struct {
	streams  *streamRegistry
	access   *accessTable
	live     livenessTracker
	identity *identityIssuer
	metrics  *metrics
	sent     *sentCounter
	log      *slog.Logger
}

// deltaID maps go-control-plane's delta stream IDs to their own range:
// it numbers state-of-the-world and delta streams with two counters that
// both start at 1, so the same number names two streams (and two tokens).
func deltaID(id int64) int64 { return -id }

// funcs wires go-control-plane's stream events to c.
func (c *streamCallbacks) funcs() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: c.onOpen,
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, typ string) error {
			return c.onOpen(ctx, deltaID(id), typ)
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) { c.onClosed(id) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) {
			c.onClosed(deltaID(id))
		},
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			if req.GetErrorDetail() != nil {
				c.metrics.nacks.WithLabelValues(req.GetTypeUrl()).Inc()
				c.log.Warn("xds: NACK", "stream", id, "node", req.GetNode().GetId(), "type", req.GetTypeUrl(), "error", req.GetErrorDetail().GetMessage())
			}
			return c.onRequest(id, req.GetNode())
		},
		StreamDeltaRequestFunc: func(id int64, req *discovery.DeltaDiscoveryRequest) error {
			if req.GetErrorDetail() != nil {
				c.metrics.nacks.WithLabelValues(req.GetTypeUrl()).Inc()
				c.log.Warn("xds: NACK", "stream", deltaID(id), "type", req.GetTypeUrl(), "error", req.GetErrorDetail().GetMessage())
			}
			return c.onRequest(deltaID(id), req.GetNode())
		},
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			n := proto.Size(resp)
			c.sent.add(n)
			c.metrics.sizes.WithLabelValues(shortType(resp.GetTypeUrl())).Observe(float64(n))
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
			n := proto.Size(resp)
			c.sent.add(n)
			c.metrics.sizes.WithLabelValues(shortType(resp.GetTypeUrl())).Observe(float64(n))
		},
	}
}

// sentCounter counts response bytes and messages.
type sentCounter struct{ bytes, msgs atomic.Int64 }

func (c *sentCounter) add(n int) {
	c.bytes.Add(int64(n))
	c.msgs.Add(1)
}

// onOpen registers the stream the authenticator put in ctx.
func (c *streamCallbacks) onOpen(ctx context.Context, id int64, _ string) error {
	st, ok := ctx.Value(streamKey{}).(*stream)
	if !ok {
		return status.Error(codes.Unauthenticated, "xds: unauthenticated stream")
	}
	st.id = id
	c.streams.add(st)
	return nil
}

// onRequest checks the node ID against the token on every request that
// carries a node, and on the first one binds the stream to its node: the
// token must match the stored Dataplane and not be revoked. It runs
// before go-control-plane opens the request's watch, so a refused stream
// is sent nothing.
func (c *streamCallbacks) onRequest(id int64, node *corev3.Node) error {
	st := c.streams.get(id)
	if st == nil {
		return status.Error(codes.Unauthenticated, "xds: unauthenticated stream")
	}
	if st.ctx.Err() != nil {
		return context.Cause(st.ctx) // closed: no new watch
	}
	if node == nil {
		if st.nodeID == "" {
			c.metrics.refused.WithLabelValues(refusedNoNode).Inc()
			return status.Error(codes.InvalidArgument, "xds: the first request must carry the node")
		}
		return nil
	}
	mesh, name := st.claims.Mesh, st.claims.Name
	want := NodeID(mesh, name)
	if node.GetId() != want {
		c.metrics.refused.WithLabelValues(refusedNodeMismatch).Inc()
		c.log.Warn("xds: stream refused", "reason", refusedNodeMismatch, "node", node.GetId(), "token", want)
		return status.Errorf(codes.PermissionDenied, "xds: node ID %q does not match the dataplane token (%s)", node.GetId(), want)
	}
	if st.nodeID != "" {
		return nil
	}
	if err := c.access.bind(st, want, bindOutbounds(node)); err != nil {
		return err
	}
	ctx := context.Background()
	if err := c.live.sync(ctx, mesh, name); err != nil {
		c.log.Error("xds: recording session", "node", want, "error", err)
	}
	if err := c.identity.ensure(ctx, want); err != nil {
		c.metrics.refused.WithLabelValues(refusedNoIdentity).Inc()
		c.log.Error("xds: identity", "node", want, "error", err)
		return status.Error(codes.Unavailable, "xds: cannot issue the dataplane's identity yet")
	}
	return nil
}

// bindOutbounds reports whether the node asks for every VIP listener.
func bindOutbounds(node *corev3.Node) bool {
	v := node.GetMetadata().GetFields()[envoybootstrap.MetaBindOutbounds]
	return v.GetBoolValue() || v.GetStringValue() == "true"
}

// onClosed forgets the stream; after its node's last stream on this
// replica it releases the node's identity and records the disconnect.
func (c *streamCallbacks) onClosed(id int64) {
	st, last := c.streams.remove(id)
	if !last {
		return
	}
	c.identity.release(st.nodeID)
	if err := c.live.sync(context.Background(), st.claims.Mesh, st.claims.Name); err != nil {
		c.log.Error("xds: recording disconnect", "node", st.nodeID, "error", err)
	}
}
