// Package awslogin builds the IAM login token a sidecar sends to the
// ecsmesh control plane (POST /v1/auth/aws-iam/login and /bootstrap): an
// sts:GetCallerIdentity request
// signed with the task's credentials (the SDK default chain, ECS container
// credentials included) but never sent. The X-Ecsmesh-Server-Id header is
// added before signing, so it is covered by the signature; a middleware
// captures the finalized, signed request and stops it before it leaves.
//
// The token is base64 of the JSON
//
//	{"iam_http_request_method": "POST",
//	 "iam_request_url":     base64(URL),
//	 "iam_request_headers": base64(JSON of http.Header, without Host),
//	 "iam_request_body":    base64(form body)}
//
// as Consul and Vault encode it.
package awslogin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ServerIDHeader is the signed header naming the control plane the login
// is meant for (ECSMESH_AWSIAM_SERVER_ID).
const ServerIDHeader = "X-Ecsmesh-Server-Id"

// Token is the decoded form of a login token.
type Token struct {
	Method  string `json:"iam_http_request_method"`
	URL     string `json:"iam_request_url"`
	Headers string `json:"iam_request_headers"`
	Body    string `json:"iam_request_body"`
}

// errCaptured stops the SDK once the request is signed.
var errCaptured = errors.New("awslogin: request captured")

// options tune NewLoginToken.
type options struct {
	stsOptions []func(*sts.Options)
}

// Option tunes NewLoginToken.
type Option func(*options)

// WithSTSOptions passes options to the STS client (e.g. a BaseEndpoint for
// tests; AWS_ENDPOINT_URL_STS in cfg is honoured without it).
func WithSTSOptions(fns ...func(*sts.Options)) Option {
	return func(o *options) { o.stsOptions = append(o.stsOptions, fns...) }
}

// NewLoginToken signs, without sending, an sts:GetCallerIdentity request to
// the STS endpoint of cfg.Region with cfg's credentials and returns it as a
// login token for the control plane whose server ID is serverID.
func NewLoginToken(ctx context.Context, cfg aws.Config, serverID string, opts ...Option) (string, error) {
	if cfg.Region == "" {
		return "", errors.New("awslogin: no AWS region configured (set AWS_REGION)")
	}
	if serverID == "" {
		return "", errors.New("awslogin: empty server ID")
	}
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	var captured *http.Request
	var body []byte
	addServerID := middleware.BuildMiddlewareFunc("ecsmeshServerID", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			req.Header.Set(ServerIDHeader, serverID)
		}
		return next.HandleBuild(ctx, in)
	})
	capture := middleware.FinalizeMiddlewareFunc("ecsmeshCapture", func(ctx context.Context, in middleware.FinalizeInput, _ middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		req, ok := in.Request.(*smithyhttp.Request)
		if !ok {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("awslogin: unexpected request type %T", in.Request)
		}
		if s := req.GetStream(); s != nil {
			b, err := io.ReadAll(s)
			if err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("awslogin: reading signed body: %w", err)
			}
			body = b
		}
		captured = req.Request.Clone(ctx)
		return middleware.FinalizeOutput{}, middleware.Metadata{}, errCaptured
	})
	stsOpts := append([]func(*sts.Options){func(so *sts.Options) {
		so.Retryer = aws.NopRetryer{}
		so.APIOptions = append(so.APIOptions, func(st *middleware.Stack) error {
			if err := st.Build.Add(addServerID, middleware.After); err != nil {
				return err
			}
			return st.Finalize.Add(capture, middleware.After)
		})
	}}, o.stsOptions...)
	_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, stsOpts...)
	if !errors.Is(err, errCaptured) {
		if err == nil {
			err = errors.New("the request was sent")
		}
		return "", fmt.Errorf("awslogin: signing sts:GetCallerIdentity: %w", err)
	}
	if captured == nil {
		return "", errors.New("awslogin: signing sts:GetCallerIdentity: no request captured")
	}
	return Encode(captured, body)
}

// Encode renders a signed request as a login token.
func Encode(r *http.Request, body []byte) (string, error) {
	h := r.Header.Clone()
	h.Del("Host")
	hb, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("awslogin: encoding headers: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(Token{
		Method:  r.Method,
		URL:     enc([]byte(r.URL.String())),
		Headers: enc(hb),
		Body:    enc(body),
	}); err != nil {
		return "", fmt.Errorf("awslogin: encoding token: %w", err)
	}
	return enc(bytes.TrimSpace(buf.Bytes())), nil
}
