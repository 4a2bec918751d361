package agent_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"log/slog"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/bootstrap/agent"
	"github.com/ecsmesh/ecsmesh/bootstrap/awslogin"
	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
	"github.com/ecsmesh/ecsmesh/bootstrap/envoy"
	"github.com/ecsmesh/ecsmesh/controlplane/config"
	"github.com/ecsmesh/ecsmesh/controlplane/cp"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/internal/test/envoytest"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeaws"
	fakemeta "github.com/ecsmesh/ecsmesh/internal/test/fakeecsmeta"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

const (
	acct     = "111122223333"
	region   = "us-east-1"
	serverID = "cp-test"
	taskID   = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

const template = `type: Dataplane
mesh: default
name: "{{ dpname }}"
labels: {kuma.io/workload: web}
networking:
  address: "{{ address }}"
  inbound:
  - port: 15000
    servicePort: {{ appPort }}
    tags: {kuma.io/service: web, kuma.io/protocol: http}
`

var roleTags = map[string]string{"kuma.io/type": "dataplane", "kuma.io/mesh": "default", "kuma.io/service": "web", "kuma.io/workload": "web"}

func TestMain(m *testing.M) {
	envoytest.RunIfFake()
	os.Exit(m.Run())
}

// manualClock moves only when the test advances it.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock() *manualClock { return &manualClock{now: time.Now()} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// eventually advances clk by step until cond holds (real-time deadline
// generous; no timing is asserted).
func eventually(t *testing.T, clk *manualClock, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if clk != nil && step > 0 {
			clk.Advance(step)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer captures the agent's log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) Contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

func (l *logBuffer) Count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// world is fake AWS, a task, and a real control plane.
type world struct {
	t       *testing.T
	cloud   *fakeaws.Cloud
	aws     *httptest.Server
	meta    *fakemeta.Fake
	metaURL string
	role    string
	taskCfg aws.Config
	dataDir string
	apiAddr string
	st      store.Store
	stopCP  func()
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, cloud: fakeaws.New(nil), dataDir: t.TempDir()}
	w.aws = httptest.NewServer(w.cloud)
	t.Cleanup(w.aws.Close)
	r := w.cloud.IAM.PutRole(acct, "web", roleTags)
	w.role = r.ARN
	cred, err := w.cloud.STS.AssumeRole(acct, "web", taskID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cpCred := w.cloud.Verifier.Issue(sigv4check.Principal{Account: acct, ARN: "arn:aws:iam::" + acct + ":user/cp", UserID: "AIDACP"}, 0)
	for k, v := range map[string]string{
		"AWS_REGION": region, "AWS_ENDPOINT_URL_STS": w.aws.URL, "AWS_ENDPOINT_URL_IAM": w.aws.URL, "AWS_ENDPOINT_URL_ECS": w.aws.URL,
		"AWS_ACCESS_KEY_ID": cpCred.AccessKeyID, "AWS_SECRET_ACCESS_KEY": cpCred.SecretAccessKey, "AWS_SESSION_TOKEN": cpCred.SessionToken,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
	} {
		t.Setenv(k, v)
	}
	w.taskCfg, err = awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region), awsconfig.WithCredentialsProvider(cred))
	if err != nil {
		t.Fatal(err)
	}
	w.meta = fakemeta.New(fakemeta.Task{
		Cluster: "arn:aws:ecs:us-east-1:" + acct + ":cluster/prod", TaskARN: "arn:aws:ecs:us-east-1:" + acct + ":task/prod/" + taskID,
		Family: "web", Revision: "1", AvailabilityZone: "us-east-1a", IPv4Address: "10.0.1.23", Self: "ecsmesh-sidecar",
		Containers: []fakemeta.Container{
			{Name: "ecsmesh-sidecar", KnownStatus: "RUNNING", Health: fakemeta.Unknown},
			{Name: "app", KnownStatus: "RUNNING", Health: fakemeta.Healthy},
		},
	}, nil)
	w.metaURL = w.aws.URL + w.cloud.AddMetadata(taskID, w.meta)
	w.apiAddr = freeAddr(t)
	return w
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCP runs the real control plane on the world's API address with a
// SQLite store in dataDir (so a restarted CP keeps its CA and meshes).
func (w *world) startCP() {
	t := w.t
	t.Helper()
	cfg := config.Default()
	cfg.APIAddr, cfg.XDSAddr, cfg.AdminAddr = w.apiAddr, "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = w.dataDir
	cfg.Store.Type = config.StoreSQLite
	cfg.Auth = config.Auth{ProxyType: config.AuthAWSIAM, ReloadableTokens: true, AuthorizedAccountIDs: []string{acct}, ServerID: serverID}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := cp.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("control plane stopped: %v", err)
	}
	w.st = srv.Store()
	if _, err := manager.New(srv.Store()).Apply(ctx, []resource.Object{&resource.Mesh{Meta: resource.Meta{Type: resource.KindMesh, Name: "default"}}}); err != nil {
		t.Fatal(err)
	}
	stopped := false
	w.stopCP = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
	}
	t.Cleanup(w.stopCP)
}

func (w *world) httpClient() *http.Client {
	w.t.Helper()
	pem, err := os.ReadFile(filepath.Join(w.dataDir, cp.CACertFile))
	if err != nil {
		w.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// dataplane reads the stored Dataplane (nil if absent).
func (w *world) dataplane() *resource.Dataplane {
	rec, err := w.st.Get(context.Background(), store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-" + taskID})
	if err != nil {
		return nil
	}
	obj, err := resource.Unmarshal(resource.KindDataplane, rec.Spec)
	if err != nil {
		w.t.Fatal(err)
	}
	return obj.(*resource.Dataplane)
}

func (w *world) inboundState() string {
	dp := w.dataplane()
	if dp == nil {
		return "absent"
	}
	if s := dp.Networking.Inbound[0].State; s != "" {
		return s
	}
	return resource.StateReady
}

// running is one agent run.
type running struct {
	a      *agent.Agent
	clk    *manualClock
	logs   *logBuffer
	envoy  envoytest.Record
	sigs   chan os.Signal
	done   chan error
	cancel context.CancelFunc
}

func (w *world) startAgent(client *http.Client) *running {
	t := w.t
	t.Helper()
	r := &running{clk: newClock(), logs: &logBuffer{}, envoy: envoytest.Record{Dir: t.TempDir()}, sigs: make(chan os.Signal, 4), done: make(chan error, 1)}
	t.Setenv(envoytest.EnvDir, r.envoy.Dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := ecsmeta.New(ecsmeta.Config{BaseURL: w.metaURL})
	if err != nil {
		t.Fatal(err)
	}
	r.a, err = agent.New(agent.Config{
		CPURL: "https://" + w.apiAddr, AuthType: agent.AuthAWS,
		Login:    func(ctx context.Context) (string, error) { return awslogin.NewLoginToken(ctx, w.taskCfg, serverID) },
		Template: template, Vars: map[string]string{"appPort": "8080"},
		CACertFile: filepath.Join(w.dataDir, cp.CACertFile), HTTPClient: client,
		WorkDir: t.TempDir(), EnvoyBinary: exe, AdminPort: mustPort(t), DrainTime: time.Hour,
		// Waits advance the manual clock quickly; the fake Envoy exits on
		// SIGTERM at its own pace, which must not race the kill grace.
		KillGrace:     24 * time.Hour,
		ReadinessAddr: "127.0.0.1:0", Version: "test",
		Metadata: meta,
		Launch: func(ctx context.Context, o envoy.Options) (agent.Envoy, error) {
			return envoy.Start(ctx, o)
		},
		Clock:  r.clk,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// The MeshMetric endpoint listens on loopback, on a free port.
		MetricsListen: func(network, addr string) (net.Listener, error) {
			r.logs.Write([]byte("metrics listen " + addr + "\n"))
			return net.Listen(network, "127.0.0.1:0")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.a.Run(ctx, r.sigs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return r
}

func mustPort(t *testing.T) int {
	_, p, _ := net.SplitHostPort(freeAddr(t))
	var n int
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return n
}

// result waits for Run to return.
func (r *running) result(t *testing.T, step time.Duration) error {
	t.Helper()
	var err error
	eventually(t, r.clk, step, "the agent to exit", func() bool {
		select {
		case err = <-r.done:
			r.done <- err
			return true
		default:
			return false
		}
	})
	return err
}
