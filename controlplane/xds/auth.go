package xds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// closeCause is why the server ends a stream: the gRPC code the client
// gets, the reason counted in ecsmesh_xds_streams_closed_by_cp_total and
// the message.
type closeCause struct {
	code   codes.Code
	reason string
	msg    string
}

func (c *closeCause) Error() string { return c.msg }

// Reasons a stream is closed by the server.
var (
	errTokenExpired     = &closeCause{codes.Unauthenticated, closedExpired, "xds: dataplane token expired; reconnect with a fresh one"}
	errDataplaneDeleted = &closeCause{codes.PermissionDenied, closedDeleted, "xds: dataplane deleted"}
	errTokenRevoked     = &closeCause{codes.Unauthenticated, refusedRevoked, "xds: the dataplane token was revoked; log in again"}
	errRoleRevoked      = &closeCause{codes.PermissionDenied, closedRoleRevoked, "xds: the IAM role of the dataplane token no longer owns this Dataplane"}
)

// bindingBroken is the cause of closing a stream whose token no longer
// matches its Dataplane (reason: refusedSPIFFEMismatch, ...).
func bindingBroken(reason string) *closeCause {
	return &closeCause{codes.PermissionDenied, reason, "xds: the dataplane token does not match the stored Dataplane (" + reason + "); log in again"}
}

// stream is one authenticated ADS stream.
type stream struct {
	id     int64
	claims token.DataplaneClaims
	nodeID string // set by the first request, fixed afterwards
	bind   bool   // the node asked for every VIP listener
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// close ends the stream with cause, once.
func (st *stream) close(c *closeCause) { st.cancel(c) }

type streamKey struct{}

// authedStream carries the verified claims and lets the server end the
// stream: RecvMsg returns as soon as the stream's context ends, which ends
// go-control-plane's loop and so the RPC, and SendMsg refuses to send
// anything once it has ended. The server ends a stream before it
// installs resources that stream must not receive (another identity), so
// a response computed from them never reaches the wire.
type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authedStream) Context() context.Context { return a.ctx }

func (a *authedStream) RecvMsg(m any) error {
	done := make(chan error, 1)
	go func() { done <- a.ServerStream.RecvMsg(m) }()
	select {
	case err := <-done:
		return err
	case <-a.ctx.Done():
		return context.Cause(a.ctx)
	}
}

func (a *authedStream) SendMsg(m any) error {
	if a.ctx.Err() != nil {
		return context.Cause(a.ctx)
	}
	return a.ServerStream.SendMsg(m)
}

// authenticate is the stream interceptor: every stream is refused unless
// it carries `authorization: Bearer <dataplane token>` that verifies. The
// stream ends when the token expires.
func (s *Server) authenticate(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	md, _ := metadata.FromIncomingContext(ss.Context())
	var raw string
	if vals := md.Get("authorization"); len(vals) == 1 {
		if scheme, tok, ok := strings.Cut(vals[0], " "); ok && strings.EqualFold(scheme, "Bearer") {
			raw = strings.TrimSpace(tok)
		}
	}
	if raw == "" {
		s.metrics.refused.WithLabelValues(refusedNoToken).Inc()
		s.log.Warn("xds: stream refused", "reason", refusedNoToken, "method", info.FullMethod)
		return status.Error(codes.Unauthenticated, "xds: authorization: Bearer <dataplane token> is required")
	}
	claims, err := s.o.Tokens.VerifyDataplaneToken(ss.Context(), raw)
	if err != nil {
		s.metrics.refused.WithLabelValues(refusedInvalidToken).Inc()
		s.log.Warn("xds: stream refused", "reason", refusedInvalidToken, "err", err)
		return status.Error(codes.Unauthenticated, "xds: invalid dataplane token")
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	st := &stream{claims: claims, ctx: ctx, cancel: cancel}
	ctx = context.WithValue(ctx, streamKey{}, st)
	if !claims.ExpiresAt.IsZero() {
		t := time.AfterFunc(claims.ExpiresAt.Sub(s.o.Now())+token.Leeway, func() { cancel(errTokenExpired) })
		defer t.Stop()
	}
	err = handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
	var cc *closeCause
	if errors.As(context.Cause(ctx), &cc) {
		s.metrics.closed.WithLabelValues(cc.reason).Inc()
		return status.Error(cc.code, cc.msg)
	}
	return err
}

func refuseUnary(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
	return nil, status.Error(codes.Unimplemented, "xds: only ADS streams are served")
}

func spiffeID(s string) (spiffeid.ID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("xds: SPIFFE ID %q: %w", s, err)
	}
	return id, nil
}

// deltaID maps go-control-plane's delta stream IDs to their own range:
// it numbers state-of-the-world and delta streams with two counters that
// both start at 1, so the same number names two streams (and two tokens).
func deltaID(id int64) int64 { return -id }

// callbacks wires go-control-plane's stream events to the server.
func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: s.onOpen,
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, typ string) error {
			return s.onOpen(ctx, deltaID(id), typ)
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) { s.onClosed(id) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) {
			s.onClosed(deltaID(id))
		},
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			if req.GetErrorDetail() != nil {
				s.metrics.nacks.WithLabelValues(req.GetTypeUrl()).Inc()
				s.log.Warn("xds: NACK", "stream", id, "node", req.GetNode().GetId(), "type", req.GetTypeUrl(), "err", req.GetErrorDetail().GetMessage())
			}
			return s.onRequest(id, req.GetNode())
		},
		StreamDeltaRequestFunc: func(id int64, req *discovery.DeltaDiscoveryRequest) error {
			if req.GetErrorDetail() != nil {
				s.metrics.nacks.WithLabelValues(req.GetTypeUrl()).Inc()
				s.log.Warn("xds: NACK", "stream", deltaID(id), "type", req.GetTypeUrl(), "err", req.GetErrorDetail().GetMessage())
			}
			return s.onRequest(deltaID(id), req.GetNode())
		},
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			s.sent.add(proto.Size(resp))
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
			s.sent.add(proto.Size(resp))
		},
	}
}

// sentCounter counts response bytes and messages.
type sentCounter struct{ bytes, msgs atomic.Int64 }

func (c *sentCounter) add(n int) {
	c.bytes.Add(int64(n))
	c.msgs.Add(1)
}

func (s *Server) onOpen(ctx context.Context, id int64, _ string) error {
	st, ok := ctx.Value(streamKey{}).(*stream)
	if !ok {
		return status.Error(codes.Unauthenticated, "xds: unauthenticated stream")
	}
	st.id = id
	s.mu.Lock()
	s.streams[id] = st
	s.mu.Unlock()
	return nil
}

// onRequest checks the node ID against the token on every request that
// carries a node, and on the first one binds the stream to its node: the
// token must match the stored Dataplane and not be revoked. It runs
// before go-control-plane opens the request's watch, so a refused stream
// is sent nothing.
func (s *Server) onRequest(id int64, node *corev3.Node) error {
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	if st == nil {
		return status.Error(codes.Unauthenticated, "xds: unauthenticated stream")
	}
	if st.ctx.Err() != nil {
		return context.Cause(st.ctx) // closed: no new watch
	}
	if node == nil {
		if st.nodeID == "" {
			s.metrics.refused.WithLabelValues(refusedNoNode).Inc()
			return status.Error(codes.InvalidArgument, "xds: the first request must carry the node")
		}
		return nil
	}
	mesh, name := st.claims.Mesh, st.claims.Name
	want := NodeID(mesh, name)
	if node.GetId() != want {
		s.metrics.refused.WithLabelValues(refusedNodeMismatch).Inc()
		s.log.Warn("xds: stream refused", "reason", refusedNodeMismatch, "node", node.GetId(), "token", want)
		return status.Errorf(codes.PermissionDenied, "xds: node ID %q does not match the dataplane token (%s)", node.GetId(), want)
	}
	if st.nodeID != "" {
		return nil
	}
	if err := s.bindStream(st, want, bindOutbounds(node)); err != nil {
		return err
	}
	ctx := context.Background()
	if err := s.syncSession(ctx, mesh, name); err != nil {
		s.log.Error("xds: recording session", "node", want, "err", err)
	}
	if err := s.ensureIdentity(ctx, want); err != nil {
		s.metrics.refused.WithLabelValues(refusedNoIdentity).Inc()
		s.log.Error("xds: identity", "node", want, "err", err)
		return status.Error(codes.Unavailable, "xds: cannot issue the dataplane's identity yet")
	}
	return nil
}

func bindOutbounds(node *corev3.Node) bool {
	v := node.GetMetadata().GetFields()[envoybootstrap.MetaBindOutbounds]
	return v.GetBoolValue() || v.GetStringValue() == "true"
}

func (s *Server) onClosed(id int64) {
	s.mu.Lock()
	st := s.streams[id]
	delete(s.streams, id)
	last := false
	if st != nil && st.nodeID != "" {
		delete(s.byNode[st.nodeID], id)
		if len(s.byNode[st.nodeID]) == 0 {
			delete(s.byNode, st.nodeID)
			last = true
		}
	}
	s.mu.Unlock()
	if !last {
		return
	}
	s.cache.releaseIdentity(st.nodeID)
	if err := s.syncSession(context.Background(), st.claims.Mesh, st.claims.Name); err != nil {
		s.log.Error("xds: recording disconnect", "node", st.nodeID, "err", err)
	}
}

// closeNodes ends every stream of the given nodes.
func (s *Server) closeNodes(ids []string, reason string) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		for _, st := range s.byNode[id] {
			s.log.Info("xds: closing stream", "node", id, "reason", reason)
			st.close(errDataplaneDeleted)
		}
	}
}
