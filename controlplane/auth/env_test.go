package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/bootstrap/awslogin"
	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/controlplane/problem"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeaws"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecs"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

const (
	acct     = "111122223333"
	region   = "us-east-1"
	serverID = "cp-test"
	session  = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	goodBody = "Action=GetCallerIdentity&Version=2011-06-15"
)

// env is one control plane with its fake AWS.
type env struct {
	t      testing.TB
	cloud  *fakeaws.Cloud
	srv    *httptest.Server
	store  *memory.Store
	tokens *token.Issuer
	skew   time.Duration
	cfg    auth.Config
	v      *auth.Verifier
	role   fakeRole
	cred   sigv4check.Credential
	dp     *resource.Dataplane
	iamCl  auth.IAM
	ecsCl  auth.ECS
}

type fakeRole struct{ ARN, RoleID string }

var defaultTags = map[string]string{
	"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": "web", "kuma.io/workload": "web",
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, cloud: fakeaws.New(nil), store: memory.New(nil)}
	e.srv = httptest.NewServer(e.cloud)
	t.Cleanup(e.srv.Close)
	r := e.cloud.IAM.PutRole(acct, "web", defaultTags)
	e.role = fakeRole{ARN: r.ARN, RoleID: r.RoleID}
	var err error
	if e.cred, err = e.cloud.STS.AssumeRole(acct, "web", session, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.cloud.ECS.AddTask(fakeecs.Task{Account: acct, Region: region, Cluster: "prod", TaskID: session, AvailabilityZone: "us-east-1a", TaskRoleARN: r.ARN})
	cp := e.cloud.Verifier.Issue(sigv4check.Principal{Account: acct, ARN: "arn:aws:iam::" + acct + ":user/cp", UserID: "AIDACP"}, 0)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	awsCfg := aws.Config{Region: region, Credentials: cp, HTTPClient: client}
	e.iamCl = auth.IAMClient{Client: awsiam.NewFromConfig(awsCfg, func(o *awsiam.Options) { o.BaseEndpoint = aws.String(e.srv.URL) })}
	e.ecsCl = auth.ECSClient{Client: awsecs.NewFromConfig(awsCfg, func(o *awsecs.Options) { o.BaseEndpoint = aws.String(e.srv.URL) })}
	if e.tokens, err = token.New(token.Config{Store: e.store}); err != nil {
		t.Fatal(err)
	}
	e.put(&resource.Mesh{Meta: resource.Meta{Type: resource.KindMesh, Name: "default"}})
	e.dp = &resource.Dataplane{
		Meta: resource.Meta{Type: resource.KindDataplane, Mesh: "default", Name: "web-1",
			Labels: map[string]string{"kuma.io/workload": "web", resource.LabelECSCluster: "prod"}},
		Networking: resource.Networking{Address: "10.0.1.23", Inbound: []resource.Inbound{
			{Port: 15000, ServicePort: 8080, Tags: map[string]string{"kuma.io/service": "web", "kuma.io/protocol": "http"}},
		}},
	}
	e.put(e.dp)
	e.cfg = auth.Config{
		Now:             func() time.Time { return time.Now().Add(e.skew) },
		HTTPClient:      client,
		STSTimeout:      2 * time.Second,
		IAM:             e.iamCl,
		ECS:             e.ecsCl,
		Store:           e.store,
		Tokens:          e.tokens,
		AllowedAccounts: []string{acct},
		ServerID:        serverID,
		STSEndpoint:     e.srv.URL,
		Retry:           auth.Retry{Attempts: 3, Backoff: time.Millisecond},
	}
	e.rebuild()
	return e
}

// rebuild makes a new Verifier from e.cfg.
func (e *env) rebuild() {
	e.t.Helper()
	v, err := auth.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.v = v
}

func (e *env) put(obj resource.Object) {
	e.t.Helper()
	b, err := resource.Marshal(obj)
	if err != nil {
		e.t.Fatal(err)
	}
	m := obj.GetMeta()
	if _, err := store.UpsertRecord(context.Background(), e.store, store.Record{Key: store.Key{Kind: m.Type, Mesh: m.Mesh, Name: m.Name}, Spec: b}); err != nil {
		e.t.Fatal(err)
	}
}

// sdkToken signs a login with the real SDK through bootstrap/awslogin.
func (e *env) sdkToken(cred aws.CredentialsProvider) string {
	e.t.Helper()
	cfg := aws.Config{Region: region, Credentials: cred}
	tok, err := awslogin.NewLoginToken(context.Background(), cfg, serverID,
		awslogin.WithSTSOptions(func(o *awssts.Options) { o.BaseEndpoint = aws.String(e.srv.URL) }))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// signed describes a hand-made signed request.
type signed struct {
	method, url, region, body string
	cred                      aws.Credentials
	at                        time.Time
	pre, post                 func(h http.Header)
}

// token signs s with the SDK's signer and encodes it.
func (e *env) token(s signed) string {
	e.t.Helper()
	if s.method == "" {
		s.method = http.MethodPost
	}
	if s.url == "" {
		s.url = e.srv.URL + "/"
	}
	if s.region == "" {
		s.region = region
	}
	if s.body == "" {
		s.body = goodBody
	}
	if s.cred.AccessKeyID == "" {
		s.cred = e.cred.AWS()
	}
	if s.at.IsZero() {
		s.at = time.Now()
	}
	req, err := http.NewRequest(s.method, s.url, strings.NewReader(s.body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set(auth.ServerIDHeader, serverID)
	if s.pre != nil {
		s.pre(req.Header)
	}
	sum := sha256.Sum256([]byte(s.body))
	if err := v4.NewSigner().SignHTTP(context.Background(), s.cred, req, hex.EncodeToString(sum[:]), "sts", s.region, s.at); err != nil {
		e.t.Fatal(err)
	}
	if s.post != nil {
		s.post(req.Header)
	}
	tok, err := awslogin.Encode(req, []byte(s.body))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) login(tok string) (*auth.Result, error) {
	return e.v.Authenticate(context.Background(), auth.LoginRequest{Mesh: "default", Name: "web-1", ProxyType: "dataplane", LoginToken: tok}, nil)
}

// stored counts the records an attack must not create.
func (e *env) stored() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, k := range []string{auth.KindLoginSignature, resource.KindDataplane, token.KindSigningKey} {
		rs, err := e.store.List(context.Background(), k, store.ListOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		out[k] = len(rs)
	}
	return out
}

func wantProblem(t testing.TB, err error, status int, reason string) {
	t.Helper()
	var p *problem.Problem
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want problem %d %s", err, status, reason)
	}
	if p.Reason != reason || p.Status != status {
		t.Fatalf("problem = %d %s (%s), want %d %s", p.Status, p.Reason, p.Details, status, reason)
	}
}

// retoken decodes a token, changes its headers and encodes it again.
func retoken(t testing.TB, tok string, fn func(h http.Header)) string {
	t.Helper()
	lt, err := auth.DecodeLoginToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	fn(lt.Header)
	req, _ := http.NewRequest(lt.Method, lt.URL.String(), nil)
	req.Header = lt.Header
	out, err := awslogin.Encode(req, lt.Body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawToken re-encodes tok with its header map changed by fn, without the
// normalisation awslogin.Encode applies.
func rawToken(t testing.TB, tok string, fn func(h map[string][]string)) string {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(tok)
	var w map[string]string
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	hb, _ := base64.StdEncoding.DecodeString(w["iam_request_headers"])
	var h map[string][]string
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	fn(h)
	hb, _ = json.Marshal(h)
	w["iam_request_headers"] = base64.StdEncoding.EncodeToString(hb)
	raw, _ = json.Marshal(w)
	return base64.StdEncoding.EncodeToString(raw)
}
