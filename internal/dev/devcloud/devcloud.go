// Package devcloud is the local AWS of `make run`: the same fakes the tests
// use (STS, IAM, ECS, Route53, ECS task metadata and container credentials,
// all speaking the real wire protocols and checking SigV4 signatures) on one
// loopback HTTP server, seeded with a private hosted zone, tagged task roles
// for demo services, their ECS tasks, and credentials for the CP itself.
package devcloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/test/fakeaws"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecs"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecsmeta"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// Defaults of the emulated account.
const (
	DefaultAccount = "123456789012"
	DefaultRegion  = "us-east-1"
	DefaultCluster = "ecsmesh-dev"
	DefaultDomain  = "mesh.local"
	// CredentialsPrefix serves ECS container credentials per task
	// (AWS_CONTAINER_CREDENTIALS_FULL_URI).
	CredentialsPrefix = "/ecs-credentials/"
)

// DemoServices are the tasks of the local run: web and redis, whose tasks
// listen on 127.0.0.2 and 127.0.0.3, and two versions of backend (127.0.0.4
// and 127.0.0.5) for traffic splits: both run with backend's task role, as
// two task definition revisions of one ECS service would.
var DemoServices = []Service{
	{Name: "web", TaskID: "web-task-1", IP: "127.0.0.2"},
	{Name: "redis", TaskID: "redis-task-1", IP: "127.0.0.3"},
	{Name: "backend", Version: "v1", TaskID: "backend-v1-task-1", IP: "127.0.0.4"},
	{Name: "backend", Version: "v2", TaskID: "backend-v2-task-1", IP: "127.0.0.5"},
}

// Service is a demo service: an IAM task role tagged for the mesh, an ECS
// task in the cluster, its metadata endpoint and its credentials.
type Service struct {
	// Name is the kuma.io/service (and workload).
	Name string
	// Mesh is the kuma.io/mesh tag (default "default").
	Mesh string
	// TaskID names the task; its IPv4 address is IP.
	TaskID string
	IP     string
	// Zone is the task's availability zone.
	Zone string
	// Version tells apart tasks of one service ("" when it has one): the
	// Dataplane's inbound tag version, and the task definition revision.
	// It is not an identity: every version runs with the service's role.
	Version string
}

// Agent names the task's sidecar agent: the service, or service-version.
func (s Service) Agent() string { return AgentName(s.Name, s.Version) }

// AgentName is the agent of a service's task of version ("" = the only
// one).
func AgentName(service, version string) string {
	if version == "" {
		return service
	}
	return service + "-" + version
}

// EnvPrefix prefixes an agent's variables in the env file: BACKEND_V1_ for
// agent backend-v1.
func EnvPrefix(agent string) string {
	return strings.ToUpper(strings.ReplaceAll(agent, "-", "_")) + "_"
}

// Options configure the cloud.
type Options struct {
	// Addr is the listen address (default 127.0.0.1:0).
	Addr     string
	Account  string
	Region   string
	Cluster  string
	Domain   string
	Services []Service
	Logger   *slog.Logger
	// RequestsPerSecond is Route53's rate limit (default 5).
	RequestsPerSecond float64
}

// Cloud is a running local AWS.
type Cloud struct {
	opts    Options
	fake    *fakeaws.Cloud
	route53 *fakeroute53.Server
	zoneID  string
	cpCred  sigv4check.Credential
	srv     *http.Server
	ln      net.Listener

	mu    sync.Mutex
	tasks map[string]Service // by task ID
	metas map[string]*fakeecsmeta.Fake
}

// Start seeds the fakes and serves them until ctx ends or Close.
func Start(ctx context.Context, o Options) (*Cloud, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Account == "" {
		o.Account = DefaultAccount
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Cluster == "" {
		o.Cluster = DefaultCluster
	}
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.RequestsPerSecond == 0 {
		o.RequestsPerSecond = 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	fake := fakeaws.New(nil)
	r53 := fakeroute53.New(fakeroute53.Options{Verifier: fake.Verifier, RequestsPerSecond: o.RequestsPerSecond, Burst: int(o.RequestsPerSecond)})
	fake.Handle("route53", r53)
	c := &Cloud{opts: o, fake: fake, route53: r53, tasks: map[string]Service{}, metas: map[string]*fakeecsmeta.Fake{}}
	c.zoneID = r53.CreateZone(o.Domain, true)
	// The CP's own identity: the role of the CP's ECS task.
	fake.IAM.PutRole(o.Account, "ecsmesh-control-plane", nil)
	cred, err := fake.STS.AssumeRole(o.Account, "ecsmesh-control-plane", "ecsmesh-cp", 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("devcloud: issuing control plane credentials: %w", err)
	}
	c.cpCred = cred
	for _, s := range o.Services {
		if err := c.AddService(s); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("devcloud: listening on %s: %w", o.Addr, err)
	}
	c.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CredentialsPrefix+"{task}", c.credentials)
	mux.Handle("/", fake)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("local AWS stopped", "error", err)
		}
	}()
	go func() { <-ctx.Done(); c.Close() }()
	return c, nil
}

// AddService creates the tagged task role, the ECS task, its metadata
// endpoint and its credentials endpoint.
func (c *Cloud) AddService(s Service) error {
	if s.Name == "" || s.TaskID == "" {
		return errors.New("devcloud: a service needs a name and a task ID")
	}
	if s.Mesh == "" {
		s.Mesh = "default"
	}
	if s.Zone == "" {
		s.Zone = c.opts.Region + "a"
	}
	role := c.RoleName(s.Name)
	tags := map[string]string{"kuma.io/type": "dataplane", "kuma.io/mesh": s.Mesh, "kuma.io/service": s.Name, "kuma.io/workload": s.Name}
	// Tasks of one service share its role: re-creating it would change
	// its RoleId under the credentials already issued.
	r, ok := c.fake.IAM.Role(c.opts.Account, role)
	if !ok {
		r = c.fake.IAM.PutRole(c.opts.Account, role, tags)
	} else if !maps.Equal(r.Tags, tags) {
		return fmt.Errorf("devcloud: task %s: role %s is tagged %v, service %s needs %v", s.TaskID, role, r.Tags, s.Name, tags)
	}
	revision := "1"
	if s.Version != "" {
		revision = strings.TrimLeft(s.Version, "v")
	}
	t := c.fake.ECS.AddTask(fakeecs.Task{
		Account: c.opts.Account, Region: c.opts.Region, Cluster: c.opts.Cluster, TaskID: s.TaskID,
		LastStatus: "RUNNING", DesiredStatus: "RUNNING", AvailabilityZone: s.Zone, TaskRoleARN: r.ARN, Family: s.Name,
	})
	meta := fakeecsmeta.New(fakeecsmeta.Task{
		Cluster: t.ClusterARN(), TaskARN: t.ARN(), Family: s.Name, Revision: revision, AvailabilityZone: s.Zone,
		IPv4Address: s.IP, Self: "ecsmesh-sidecar",
		Containers: []fakeecsmeta.Container{
			{Name: "ecsmesh-sidecar", KnownStatus: "RUNNING", Health: fakeecsmeta.Healthy},
			{Name: "app", KnownStatus: "RUNNING", Health: fakeecsmeta.Healthy},
		},
	}, nil)
	c.fake.AddMetadata(s.TaskID, meta)
	c.mu.Lock()
	c.tasks[s.TaskID] = s
	c.metas[s.TaskID] = meta
	c.mu.Unlock()
	return nil
}

// RoleName is the IAM role of a demo service's task.
func (c *Cloud) RoleName(service string) string { return "ecsmesh-demo-" + service }

// URL is the base URL of every emulated service.
func (c *Cloud) URL() string { return "http://" + c.ln.Addr().String() }

// ZoneID is the private hosted zone's ID.
func (c *Cloud) ZoneID() string { return c.zoneID }

// Route53 exposes the Route53 fake (records, call counts).
func (c *Cloud) Route53() *fakeroute53.Server { return c.route53 }

// Fake exposes the other fakes (roles, tasks, faults).
func (c *Cloud) Fake() *fakeaws.Cloud { return c.fake }

// Metadata returns the metadata endpoint of a task.
func (c *Cloud) Metadata(taskID string) *fakeecsmeta.Fake {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metas[taskID]
}

// CPEnv is the environment a control plane needs to use this cloud with
// IAM login (tasks verified with ecs:DescribeTasks) and the Route53 writer.
func (c *Cloud) CPEnv() []string {
	return append(c.endpointEnv(),
		"AWS_ACCESS_KEY_ID="+c.cpCred.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+c.cpCred.SecretAccessKey,
		"AWS_SESSION_TOKEN="+c.cpCred.SessionToken,
		"KMESH_AWSIAM_AUTHORIZEDACCOUNTIDS="+c.opts.Account,
		"ECSMESH_AWSIAM_VERIFY_ECS_TASK=true",
		"KMESH_RUNTIME_AWS_ROUTE53_ENABLED=true",
		"KMESH_RUNTIME_AWS_ROUTE53_HOSTED_ZONE_ID="+c.zoneID,
		"KUMA_DNS_SERVER_DOMAIN="+c.opts.Domain,
	)
}

// AgentEnv is the environment of the sidecar agent of a task: its metadata
// endpoint and its task role credentials, as ECS provides them.
func (c *Cloud) AgentEnv(taskID string) []string {
	return append(c.endpointEnv(),
		"ECS_CONTAINER_METADATA_URI_V4="+c.URL()+fakeaws.MetadataPrefix+taskID,
		"AWS_CONTAINER_CREDENTIALS_FULL_URI="+c.URL()+CredentialsPrefix+taskID,
	)
}

func (c *Cloud) endpointEnv() []string {
	u := c.URL()
	return []string{
		"AWS_REGION=" + c.opts.Region,
		"AWS_ENDPOINT_URL_STS=" + u,
		"AWS_ENDPOINT_URL_IAM=" + u,
		"AWS_ENDPOINT_URL_ECS=" + u,
		"AWS_ENDPOINT_URL_ROUTE_53=" + u,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// credentials serves the ECS container credentials of a task's role, as
// the ECS agent does at 169.254.170.2.
func (c *Cloud) credentials(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	s, ok := c.tasks[r.PathValue("task")]
	c.mu.Unlock()
	if !ok {
		http.Error(w, `{"code":"NotFound","message":"no such task"}`, http.StatusNotFound)
		return
	}
	cred, err := c.fake.STS.AssumeRole(c.opts.Account, c.RoleName(s.Name), s.TaskID, time.Hour)
	if err != nil {
		http.Error(w, `{"code":"InternalError"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"AccessKeyId":     cred.AccessKeyID,
		"SecretAccessKey": cred.SecretAccessKey,
		"Token":           cred.SessionToken,
		"Expiration":      cred.Expires.UTC().Format(time.RFC3339),
		"RoleArn":         fmt.Sprintf("arn:aws:iam::%s:role/%s", c.opts.Account, c.RoleName(s.Name)),
	})
}

// EnvFile is what local agents and the demo need to know, written by
// `ecsmesh-dev run` as DATA_DIR/dev.env.
type EnvFile struct {
	AdminURL string
	APIURL   string
	ServerID string
}

// WriteEnvFile writes the environment of local agents, one KEY=VALUE per
// line: the CP's URLs and, per task, its agent's AWS environment
// prefixed with EnvPrefix of its agent (WEB_AWS_REGION=...,
// BACKEND_V1_AWS_REGION=...).
func (c *Cloud) WriteEnvFile(path string, e EnvFile) error {
	if strings.TrimSpace(e.ServerID) == "" {
		return errors.New("devcloud: the env file needs the CP's server ID (ECSMESH_AWSIAM_SERVER_ID): agents sign it into their logins")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# written by ecsmesh-dev run; the environment of local agents\n")
	fmt.Fprintf(&b, "ECSMESH_DEV_AWS_URL=%s\n", c.URL())
	fmt.Fprintf(&b, "ECSMESH_DEV_ADMIN_URL=%s\n", e.AdminURL)
	fmt.Fprintf(&b, "ECSMESH_DEV_ROUTE53_ZONE_ID=%s\n", c.ZoneID())
	fmt.Fprintf(&b, "KUMA_CONTROL_PLANE_URL=%s\n", e.APIURL)
	fmt.Fprintf(&b, "ECSMESH_AWSIAM_SERVER_ID=%s\n", e.ServerID)
	c.mu.Lock()
	ids := make([]string, 0, len(c.tasks))
	for id := range c.tasks {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		c.mu.Lock()
		s := c.tasks[id]
		c.mu.Unlock()
		for _, kv := range c.AgentEnv(id) {
			fmt.Fprintf(&b, "%s%s\n", EnvPrefix(s.Agent()), kv)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("devcloud: writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ServerIDFile holds the server ID of a local run under its data directory.
const ServerIDFile = "dev-server-id"

// ServerID returns the X-Ecsmesh-Server-Id of the local run whose state is
// dataDir: read from dataDir/ServerIDFile, or, on the first run, a new
// random one written there (0600), so that each data directory has its
// own ID and keeps it across restarts.
func ServerID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, ServerIDFile)
	for range 2 {
		data, err := os.ReadFile(path)
		if err == nil {
			id := strings.TrimSpace(string(data))
			if id == "" {
				return "", fmt.Errorf("devcloud: %s is empty; delete it to get a new server ID", path)
			}
			return id, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("devcloud: reading the server ID: %w", err)
		}
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("devcloud: generating a server ID: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue // another run created it first: read that one
		}
		if err != nil {
			return "", fmt.Errorf("devcloud: writing the server ID: %w", err)
		}
		id := "ecsmesh-dev-" + hex.EncodeToString(b)
		_, err = f.WriteString(id + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
			return "", fmt.Errorf("devcloud: writing the server ID: %w", err)
		}
		return id, nil
	}
	return "", fmt.Errorf("devcloud: cannot settle on a server ID in %s", path)
}

// Records renders the zone's records, one per line, sorted.
func (c *Cloud) Records() []string {
	var out []string
	for _, r := range c.route53.Records(c.zoneID) {
		if r.Type == "SOA" || r.Type == "NS" {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %s", r.Name, r.Type, strings.Join(r.Values, ",")))
	}
	sort.Strings(out)
	return out
}

// Close stops the server.
func (c *Cloud) Close() {
	if c.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = c.srv.Shutdown(ctx)
	}
}
