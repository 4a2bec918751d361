package devdemo

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// bins are the binaries the end-to-end test runs, built once.
var bins struct {
	dir, cp, dev, dp, wasm string
	err                    error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ecsmesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir, bins.cp, bins.dev, bins.dp, bins.wasm = dir, filepath.Join(dir, "ecsmesh-cp"), filepath.Join(dir, "ecsmesh-dev"), filepath.Join(dir, "ecsmesh-dp"), filepath.Join(dir, "ecsmesh-filter.wasm")
	bins.err = build()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build() error {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return err
	}
	modDir := filepath.Dir(strings.TrimSpace(string(root)))
	for _, b := range []struct {
		out, pkg string
		env      []string
		args     []string
	}{
		{bins.cp, "./controlplane/cmd/ecsmesh-cp", nil, nil},
		{bins.dev, "./internal/dev/cmd/ecsmesh-dev", nil, nil},
		{bins.dp, "./bootstrap/cmd/ecsmesh-dp", nil, nil},
		{bins.wasm, "./filter/cmd/wasm", []string{"GOOS=wasip1", "GOARCH=wasm"}, []string{"-buildmode=c-shared"}},
	} {
		if w := os.Getenv("ECSMESH_FILTER_WASM"); b.out == bins.wasm && w != "" {
			bins.wasm = w
			continue
		}
		args := append([]string{"build", "-o", b.out}, append(b.args, b.pkg)...)
		cmd := exec.Command("go", args...)
		cmd.Dir = modDir
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cpProcess is `ecsmesh-cp run` as a child process.
type cpProcess struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan error
}

func startCP(t *testing.T, env []string, admin string) *cpProcess {
	t.Helper()
	cmd := exec.Command(bins.cp, "run")
	cmd.Env = append(os.Environ(), env...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &cpProcess{cmd: cmd, logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("the CP exited at start: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CP did not become ready:\n%s", logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *cpProcess) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("the CP exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("the CP did not stop within 30 s of SIGTERM")
	}
	p.cmd.ProcessState = &os.ProcessState{}
}

// TestLocalMeshEndToEnd runs the flow of `make demo` as real processes on
// random loopback ports (the CP, four ecsmesh-dp agents, their stand-in
// Envoys; the AWS fakes in-process), asserts every step, restarts the CP in
// the middle and checks nothing was rewritten, then stops the agents.
func TestLocalMeshEndToEnd(t *testing.T) {
	if bins.err != nil {
		t.Fatalf("building the binaries: %v", bins.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cloud, err := devcloud.Start(ctx, devcloud.Options{Services: devcloud.DemoServices})
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	dataDir := t.TempDir()
	serverID, err := devcloud.ServerID(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	admin, api, xds := freePort(t), freePort(t), freePort(t)
	env := append(cloud.CPEnv(),
		"ECSMESH_DATA_DIR="+dataDir, "ECSMESH_API_ADDR="+api, "ECSMESH_XDS_ADDR="+xds, "ECSMESH_ADMIN_ADDR="+admin,
		"ECSMESH_AWSIAM_SERVER_ID="+serverID, "KUMA_STORE_TYPE=sqlite")
	cp := startCP(t, env, admin)
	if err := cloud.WriteEnvFile(filepath.Join(dataDir, "dev.env"), devcloud.EnvFile{
		AdminURL: "http://" + admin, APIURL: "https://" + api, ServerID: serverID,
	}); err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	agentLogs := &lockedBuffer{}
	d, err := New(Options{DataDir: dataDir, DevBinary: bins.dev, DPBinary: bins.dp, WasmFile: bins.wasm, Out: out, Logs: agentLogs,
		PortBase: freePortBase(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.StopAgents()
	res, err := d.Run(ctx)
	t.Logf("demo output:\n%s", out)
	if err != nil {
		t.Fatalf("demo: %v\nagents:\n%s\nCP:\n%s", err, agentLogs, cp.logs)
	}

	// Logins accepted, one Dataplane per task.
	for _, a := range Agents {
		if !strings.HasPrefix(res.Dataplanes[a.Name], a.Service+"-") {
			t.Errorf("dataplane of %s = %q", a.Name, res.Dataplanes[a.Name])
		}
	}
	// VIPs in the loopback range and their records, with ownership.
	webVIP, redisVIP := aValue(res.Records, "web.mesh.local"), aValue(res.Records, "redis.mesh.local")
	if !strings.HasPrefix(webVIP, "127.1.") || !strings.HasPrefix(redisVIP, "127.1.") || webVIP == redisVIP {
		t.Errorf("VIPs web=%q redis=%q", webVIP, redisVIP)
	}
	// One ownership claim for the domain, no TXT record per name.
	if want := `_ecsmesh-owner.mesh.local TXT "heritage=ecsmesh,owner=ecsmesh"`; !slices.Contains(res.Records, want) {
		t.Errorf("records %q lack %q", res.Records, want)
	}
	for _, r := range res.Records {
		if strings.HasPrefix(r, "_ecsmesh-a.") {
			t.Errorf("per-record ownership TXT %q written", r)
		}
	}
	// xDS: listeners on both VIPs, the inbound on the task address, EDS.
	web := res.Received["web"]
	for _, l := range []string{"inbound:127.0.0.2:15000", "outbound:" + redisVIP + ":8080"} {
		if !slices.Contains(web.Listeners, l) {
			t.Errorf("web's listeners %q lack %s", web.Listeners, l)
		}
	}
	if got := web.Endpoints["redis"]; !slices.Equal(got, []string{"127.0.0.3:15000"}) {
		t.Errorf("web's endpoints of redis = %v", got)
	}
	// The request through the .wasm.
	if res.Routed.Status != 0 || res.Routed.Headers["x-ecsmesh-cluster"] != "redis" || res.Routed.Headers["x-ecsmesh-identity"] == "" {
		t.Errorf("routed: %+v", res.Routed)
	}
	if v := res.Routed.Headers["x-ecsmesh-peer-id"]; v != "" {
		t.Errorf("a spoofed x-ecsmesh-peer-id survived: %q", v)
	}
	if res.Allowed.Status != 0 || res.Allowed.Headers["x-ecsmesh-peer-id"] != "spiffe://default.mesh.local/workload/web" {
		t.Errorf("allowed: %+v", res.Allowed)
	}
	checkSplit(t, res)
	if res.AdminRefused == nil || res.AdminRefused.Status != 403 || res.AdminRefused.Body != "ecsmesh: spiffe://default.mesh.local/workload/web may not call backend" {
		t.Errorf("L7: GET /admin/users = %+v, want 403 from backend's rule", res.AdminRefused)
	}
	if res.RootAllowed == nil || res.RootAllowed.Status != 0 || res.RootAllowed.Headers["x-ecsmesh-peer-id"] != "spiffe://default.mesh.local/workload/web" {
		t.Errorf("L7: GET / = %+v, want it let through with web's identity", res.RootAllowed)
	}
	if res.Refused.Status != 403 || res.Refused.Body != "ecsmesh: spiffe://default.mesh.local/workload/web may not call redis" {
		t.Errorf("refused: %d %q", res.Refused.Status, res.Refused.Body)
	}
	if res.ForgedStatus != 401 || res.ForgedReason != "server_id_mismatch" {
		t.Errorf("forged login: %d %s", res.ForgedStatus, res.ForgedReason)
	}

	// CP restart in the middle: agents reconnect, VIPs and records stay,
	// and the restarted CP writes nothing to Route53.
	changesBefore := cloud.Route53().Calls()["ChangeResourceRecordSets"]
	recordsBefore := cloud.Records()
	cp.stop(t)
	startCP(t, env, admin)
	// A change only a live stream can deliver: lift the permission and wait
	// for redis's inbound filter to lose it.
	if status, body, err := d.admin.do(ctx, "DELETE", "/meshes/default/meshtrafficpermissions/deny-web-to-redis", ""); err != nil || status != 200 {
		t.Fatalf("deleting the permission: %d %s %v", status, body, err)
	}
	if err := d.wait(ctx, "redis to reconnect and receive the change", func() (bool, error) {
		r, err := ReadReceived(d.Agent("redis").Dir)
		if err != nil {
			return false, nil
		}
		cfg, _ := r.Filter("ecsmesh-inbound")
		return cfg != "" && !strings.Contains(cfg, `"Deny"`), nil
	}); err != nil {
		t.Fatalf("%v\nagents:\n%s", err, agentLogs)
	}
	// Give the restarted writer a refresh to (wrongly) write; it must not.
	time.Sleep(2 * time.Second)
	if got := cloud.Records(); !slices.Equal(got, recordsBefore) {
		t.Errorf("records changed across the CP restart:\nbefore %q\nafter  %q", recordsBefore, got)
	}
	if got := cloud.Route53().Calls()["ChangeResourceRecordSets"]; got != changesBefore {
		t.Errorf("the restarted CP wrote to Route53: %d change calls, was %d", got, changesBefore)
	}

	// SIGTERM: each agent exits cleanly; bootstrap-created dataplanes are
	// removed after the grace period (no zombie endpoints).
	for _, a := range Agents {
		if err := d.Agent(a.Name).Stop(30 * time.Second); err != nil {
			t.Errorf("the %s agent: %v", a.Name, err)
		}
	}
	if err := d.wait(ctx, "dataplanes removed after their streams ended", func() (bool, error) {
		dps, err := d.Dataplanes(ctx)
		return err == nil && len(dps) == 0, err
	}); err != nil {
		t.Error(err)
	}
}

// freePortBase finds free port pairs ten apart for the agents; the
// agents retry binding, so a rare collision fails loudly, not silently.
func freePortBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := true
		var ports []int
		for i := range Agents {
			ports = append(ports, port+10*i, port+10*i+1)
		}
		for _, p := range ports {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok && ports[len(ports)-1] < 65535 {
			return port
		}
	}
	t.Fatal("no free port range for the agents")
	return 0
}
