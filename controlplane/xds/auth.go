package xds

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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

// Error returns the message the client gets.
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

// streamKey is the context key under which the authenticator hands the
// stream to the stream callbacks.
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

// Context returns the stream's context, which carries its claims and ends
// when the server closes the stream.
func (a *authedStream) Context() context.Context { return a.ctx }

// RecvMsg receives the next message, or returns the close cause as soon
// as the stream's context ends.
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

// SendMsg sends m unless the stream's context has ended.
func (a *authedStream) SendMsg(m any) error {
	if a.ctx.Err() != nil {
		return context.Cause(a.ctx)
	}
	return a.ServerStream.SendMsg(m)
}

// authenticator is the gRPC stream interceptor of the ADS server: it
// admits only streams whose dataplane token verifies, hands the stream's
// claims to the stream callbacks and ends the stream with the cause the
// server closes it for.
type authenticator struct {
	tokens  Tokens
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
}

// intercept is the stream interceptor: every stream is refused unless it
// carries `authorization: Bearer <dataplane token>` that verifies. The
// stream ends when the token expires.
func (a *authenticator) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	md, _ := metadata.FromIncomingContext(ss.Context())
	var raw string
	if vals := md.Get("authorization"); len(vals) == 1 {
		if scheme, tok, ok := strings.Cut(vals[0], " "); ok && strings.EqualFold(scheme, "Bearer") {
			raw = strings.TrimSpace(tok)
		}
	}
	if raw == "" {
		a.metrics.refused.WithLabelValues(refusedNoToken).Inc()
		a.log.Warn("xds: stream refused", "reason", refusedNoToken, "method", info.FullMethod)
		return status.Error(codes.Unauthenticated, "xds: authorization: Bearer <dataplane token> is required")
	}
	claims, err := a.tokens.VerifyDataplaneToken(ss.Context(), raw)
	if err != nil {
		a.metrics.refused.WithLabelValues(refusedInvalidToken).Inc()
		a.log.Warn("xds: stream refused", "reason", refusedInvalidToken, "error", err)
		return status.Error(codes.Unauthenticated, "xds: invalid dataplane token")
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	st := &stream{claims: claims, ctx: ctx, cancel: cancel}
	ctx = context.WithValue(ctx, streamKey{}, st)
	if !claims.ExpiresAt.IsZero() {
		t := time.AfterFunc(claims.ExpiresAt.Sub(a.now())+token.Leeway, func() { cancel(errTokenExpired) })
		defer t.Stop()
	}
	err = handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
	var cc *closeCause
	if errors.As(context.Cause(ctx), &cc) {
		a.metrics.closed.WithLabelValues(cc.reason).Inc()
		return status.Error(cc.code, cc.msg)
	}
	return err
}

// refuseUnary is the unary interceptor: the server serves ADS streams only.
func refuseUnary(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
	return nil, status.Error(codes.Unimplemented, "xds: only ADS streams are served")
}
