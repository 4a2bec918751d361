// Package devdemo is `make demo`: four sidecar agents (web, redis, and
// backend v1 and v2) join a running local mesh (`make run`) through the
// whole flow — IAM login, VIPs, Route53 records, xDS delivered to a
// stand-in Envoy — then one request goes through the built
// ecsmesh-filter.wasm under wazero with the configuration the CP delivered,
// a MeshHTTPRoute splits web → backend 90/10 between versions (1,000
// requests through the .wasm and the stand-in router over web's delivered
// listener) with a MeshRetry and a MeshTimeout in the route, a
// MeshTrafficPermission refuses a call, and a forged login is refused.
// Each step is exported so the end-to-end test runs the same flow and
// asserts it.
package devdemo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// AgentSpec is one task's sidecar agent (devcloud.DemoServices).
type AgentSpec struct {
	// Name is devcloud's agent name: the service, or service-version.
	Name    string
	Service string
	// Version is the inbound tag version ("" = none).
	Version string
	AppPort int
}

// Agents of the demo, in start order.
var Agents = []AgentSpec{
	{Name: "web", Service: "web", AppPort: 8080},
	{Name: "redis", Service: "redis", AppPort: 6379},
	{Name: "backend-v1", Service: "backend", Version: "v1", AppPort: 8080},
	{Name: "backend-v2", Service: "backend", Version: "v2", AppPort: 8080},
}

// Options locate the running mesh and the binaries.
type Options struct {
	// AdminURL is the CP admin API, e.g. http://127.0.0.1:5681.
	AdminURL string
	// DataDir holds dev.env and cp-ca.pem (written by `ecsmesh-dev run`);
	// agents' work directories go under DataDir/demo.
	DataDir string
	// DevBinary is build/ecsmesh-dev (its `envoy` command is the agents'
	// stand-in Envoy); DPBinary is build/ecsmesh-dp; WasmFile is
	// build/ecsmesh-filter.wasm.
	DevBinary, DPBinary, WasmFile string
	// Out receives the progress lines; Logs the agents' output (nil: a
	// file per agent under DataDir/demo).
	Out  io.Writer
	Logs io.Writer
	// StepTimeout bounds each wait (default 60 s).
	StepTimeout time.Duration
	// PortBase numbers the agents' local ports: agent i uses PortBase+10i
	// (Envoy admin) and PortBase+10i+1 (readiness). Default 19901.
	PortBase int
}

// Demo is a running demo.
type Demo struct {
	o      Options
	env    map[string]string
	agents map[string]*Agent
	step   int
	admin  *adminClient
}

// New reads dev.env and prepares the demo.
func New(o Options) (*Demo, error) {
	if o.StepTimeout == 0 {
		o.StepTimeout = 60 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.PortBase == 0 {
		o.PortBase = 19901
	}
	env, err := ReadEnvFile(filepath.Join(o.DataDir, "dev.env"))
	if err != nil {
		return nil, fmt.Errorf("devdemo: %w (is `make run` up?)", err)
	}
	if env["ECSMESH_AWSIAM_SERVER_ID"] == "" {
		return nil, fmt.Errorf("devdemo: %s lacks ECSMESH_AWSIAM_SERVER_ID, the server ID agents sign into their logins (restart `make run` to rewrite it)", filepath.Join(o.DataDir, "dev.env"))
	}
	for _, a := range Agents {
		if k := devcloud.EnvPrefix(a.Name) + "AWS_CONTAINER_CREDENTIALS_FULL_URI"; env[k] == "" {
			return nil, fmt.Errorf("devdemo: %s lacks %s: the local AWS of this `make run` has no %s task (restart `make run` with the current build)", filepath.Join(o.DataDir, "dev.env"), k, a.Name)
		}
	}
	if o.AdminURL == "" {
		o.AdminURL = env["ECSMESH_DEV_ADMIN_URL"]
	}
	return &Demo{o: o, env: env, agents: map[string]*Agent{}, admin: &adminClient{base: strings.TrimRight(o.AdminURL, "/")}}, nil
}

// ReadEnvFile reads KEY=VALUE lines, skipping comments.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}

// Progress prints a numbered step line.
func (d *Demo) Progress(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.o.Out, "\n[%d] %s\n", d.step, fmt.Sprintf(format, args...))
}

// Detail prints an indented line under the current step.
func (d *Demo) Detail(format string, args ...any) {
	fmt.Fprintf(d.o.Out, "    %s\n", fmt.Sprintf(format, args...))
}

// agentEnv returns the environment of one agent.
func (d *Demo) agentEnv(agent string) []string {
	prefix := devcloud.EnvPrefix(agent)
	env := os.Environ()
	for k, v := range d.env {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			env = append(env, rest+"="+v)
		}
	}
	return append(env, "ECSMESH_AWSIAM_SERVER_ID="+d.env["ECSMESH_AWSIAM_SERVER_ID"])
}

// Agent is one running ecsmesh-dp with its stand-in Envoy.
type Agent struct {
	// Name is the agent's (AgentSpec.Name).
	Name    string
	Service string
	// Dir is the agent's work directory (bootstrap, token, xds.json).
	Dir string
	cmd *exec.Cmd
	// ReadyPort serves the agent's /ready.
	ReadyPort int

	mu   sync.Mutex
	done chan struct{}
	err  error
}

const dataplaneTemplate = `type: Dataplane
mesh: default
name: "{{ .Service }}-{{"{{"}} taskId {{"}}"}}"
labels: {kuma.io/workload: {{ .Service }}}
networking:
  address: "{{"{{"}} address {{"}}"}}"
  inbound:
  - port: 15000
    servicePort: {{ .AppPort }}
    tags: {kuma.io/service: {{ .Service }}, kuma.io/protocol: http{{ .Version }}}
`

// StartAgent starts the agent of one task; index numbers its ports.
func (d *Demo) StartAgent(ctx context.Context, spec AgentSpec, index int) (*Agent, error) {
	service := spec.Service
	dir := filepath.Join(d.o.DataDir, "demo", spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	version := ""
	if spec.Version != "" {
		version = ", version: " + spec.Version
	}
	tmpl := strings.NewReplacer("{{ .Service }}", service, "{{ .AppPort }}", fmt.Sprint(spec.AppPort), "{{ .Version }}", version).Replace(dataplaneTemplate)
	tmpl = strings.NewReplacer(`{{"{{"}}`, "{{", `{{"}}"}}`, "}}").Replace(tmpl)
	dpFile := filepath.Join(dir, "dataplane.yaml")
	if err := os.WriteFile(dpFile, []byte(tmpl), 0o600); err != nil {
		return nil, err
	}
	// The agent runs "Envoy" as it would run the real one: here the
	// stand-in, `ecsmesh-dev envoy`, through a two-line script.
	envoy := filepath.Join(dir, "envoy")
	script := fmt.Sprintf("#!/bin/sh\nexec %q envoy \"$@\"\n", d.o.DevBinary)
	if err := os.WriteFile(envoy, []byte(script), 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{"xds.json", "token"} {
		_ = os.Remove(filepath.Join(dir, f))
	}
	adminPort, readyPort := d.o.PortBase+index*10, d.o.PortBase+index*10+1
	cmd := exec.Command(d.o.DPBinary, "run",
		"--cp-address", d.env["KUMA_CONTROL_PLANE_URL"],
		"--auth-type", "aws",
		"--dataplane-file", dpFile,
		"--ca-cert-file", filepath.Join(d.o.DataDir, "cp-ca.pem"),
		"--envoy-binary", envoy,
		"--workdir", dir,
		"--admin-port", fmt.Sprint(adminPort),
		"--readiness-port", fmt.Sprint(readyPort),
		"--bind-outbounds",
		"--drain-time", "2s",
	)
	cmd.Env = d.agentEnv(spec.Name)
	logs := d.o.Logs
	if logs == nil {
		f, err := os.Create(filepath.Join(dir, "agent.log"))
		if err != nil {
			return nil, err
		}
		logs = f
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devdemo: starting the %s agent: %w", spec.Name, err)
	}
	a := &Agent{Name: spec.Name, Service: service, Dir: dir, cmd: cmd, ReadyPort: readyPort, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
		close(a.done)
	}()
	d.agents[spec.Name] = a
	return a, nil
}

// Stop sends SIGTERM (the agent drains, then stops Envoy) and waits.
func (a *Agent) Stop(timeout time.Duration) error {
	select {
	case <-a.done:
		return a.exitErr()
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		return a.exitErr()
	case <-time.After(timeout):
		_ = a.cmd.Process.Kill()
		<-a.done
		return fmt.Errorf("devdemo: the %s agent did not stop within %s", a.Name, timeout)
	}
}

func (a *Agent) exitErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Ready reports whether the agent's readiness endpoint answers 200.
func (a *Agent) Ready(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/ready", a.ReadyPort), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Agent returns a started agent by name (AgentSpec.Name).
func (d *Demo) Agent(name string) *Agent { return d.agents[name] }

// StopAgents stops every agent.
func (d *Demo) StopAgents() {
	for _, a := range d.agents {
		_ = a.Stop(20 * time.Second)
	}
}

// wait polls cond until it holds or the step timeout passes.
func (d *Demo) wait(ctx context.Context, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d.o.StepTimeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("devdemo: waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("devdemo: waiting for %s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
