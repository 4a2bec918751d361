package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store/pgtest"

	"github.com/jackc/pgx/v5"
)

// Generous deadlines for polling; they bound a hung test, they are not
// timing assertions.
const (
	startDeadline  = 60 * time.Second
	settleDeadline = 60 * time.Second
	pollEvery      = 200 * time.Millisecond
)

// Paths set by TestMain.
var (
	moduleRoot string // directory of go.mod
	cpBinary   string // the ecsmesh-cp built for this run
)

// TestMain builds ecsmesh-cp once for every test of the package.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		fmt.Fprintf(os.Stderr, "e2e: cannot locate the module (go env GOMOD = %q): %v\n", gomod, err)
		return 1
	}
	moduleRoot = filepath.Dir(gomod)
	dir, err := os.MkdirTemp("", "ecsmesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	cpBinary = filepath.Join(dir, "ecsmesh-cp")
	build := exec.Command("go", "build", "-o", cpBinary, "./controlplane/cmd/ecsmesh-cp")
	build.Dir = moduleRoot
	if b, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building ecsmesh-cp: %v\n%s", err, b)
		return 1
	}
	return m.Run()
}

// lockedBuffer collects a process's or a logger's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cpProcess is one `ecsmesh-cp run` child process.
type cpProcess struct {
	name string
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{} // closed once the process exited
	// Addresses the process reported in its log (it listens on :0 ports).
	admin, api, xds string
	// dataDir is its ECSMESH_DATA_DIR (cp-ca.pem is written there).
	dataDir string
}

var listenLine = regexp.MustCompile(`msg="(admin API|sidecar API|ADS) listening[^"]*" addr=(\S+)`)

// startCP runs `ecsmesh-cp run` with env on free loopback ports, and waits
// until its admin API answers GET /ready with 200. The process is stopped
// (SIGTERM, then SIGKILL) when the test ends; its log is printed if the
// test failed.
func startCP(t *testing.T, name string, env []string) *cpProcess {
	t.Helper()
	full := cleanEnv()
	dataDir := t.TempDir()
	full = append(full,
		"ECSMESH_INSTANCE_ID="+name,
		"ECSMESH_DATA_DIR="+dataDir,
		"ECSMESH_API_ADDR=127.0.0.1:0",
		"ECSMESH_XDS_ADDR=127.0.0.1:0",
		"ECSMESH_ADMIN_ADDR=127.0.0.1:0",
		// One server ID per test, shared by its replicas; env may override.
		"ECSMESH_AWSIAM_SERVER_ID=ecsmesh-e2e-"+t.Name(),
	)
	full = append(full, env...)
	cmd := exec.Command(cpBinary, "run")
	cmd.Env = full
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &cpProcess{name: name, cmd: cmd, logs: &lockedBuffer{}, done: make(chan struct{}), dataDir: dataDir}
	cmd.Stdout = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	addrs := make(chan [2]string, 8)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.logs.Write([]byte(line + "\n"))
			if m := listenLine.FindStringSubmatch(line); m != nil {
				select {
				case addrs <- [2]string{m[1], m[2]}:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-scanned // Wait must not run before the pipe is drained
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("---- log of %s ----\n%s", name, p.logs.String())
		}
	})
	deadline := time.After(startDeadline)
	for p.admin == "" || p.api == "" || p.xds == "" {
		select {
		case a := <-addrs:
			switch a[0] {
			case "admin API":
				p.admin = a[1]
			case "sidecar API":
				p.api = a[1]
			case "ADS":
				p.xds = a[1]
			}
		case <-p.done:
			t.Fatalf("%s exited at start (%s)", name, cmd.ProcessState)
		case <-deadline:
			t.Fatalf("%s did not report its listen addresses within %v", name, startDeadline)
		}
	}
	waitFor(t, startDeadline, name+" GET /ready = 200", func() (bool, string) {
		status, body, err := httpDo(http.MethodGet, "http://"+p.admin+"/ready", "")
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusOK, fmt.Sprintf("%d %s", status, body)
	})
	return p
}

// kill sends SIGKILL (no graceful release of anything) and waits.
func (p *cpProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing %s: %v", p.name, err)
	}
	<-p.done
}

// stop asks for a graceful stop (SIGTERM), then kills after 20 s.
func (p *cpProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// apply posts a multi-document YAML to the admin API's POST /apply.
func (p *cpProcess) apply(t *testing.T, yaml string) {
	t.Helper()
	status, body, err := httpDo(http.MethodPost, "http://"+p.admin+"/apply", yaml)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /apply on %s: %d %s %v", p.name, status, body, err)
	}
}

// cleanEnv is this process's environment without any variable the CP or
// the AWS SDK reads, so the developer's settings do not leak in.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "KUMA_") || strings.HasPrefix(k, "KMESH_") || strings.HasPrefix(k, "ECSMESH_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
}

func httpDo(method, u, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/yaml") // the admin API refuses other write types
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond until it holds or deadline passes; the last state
// cond described is reported on failure.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not reached within %v; last state: %s", what, deadline, state)
		}
		time.Sleep(pollEvery)
	}
}

// postgresEnv is the store environment of CPs sharing a fresh schema of the
// database in ECSMESH_TEST_POSTGRES_DSN. The schema is dropped when the
// test ends (after the CPs stopped: register it before starting them).
func postgresEnv(t *testing.T) (env []string, dsn, schema string) {
	t.Helper()
	dsn = pgtest.DSN(t)
	conn := pgConnect(t, dsn) // reachable, or fail now with a clear message
	_ = conn.Close(context.Background())
	env, schema = pgtest.CPEnv(t, "ecsmesh_e2e_")
	return env, dsn, schema
}

// pgConnect opens a connection the test closes itself.
func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("PostgreSQL at ECSMESH_TEST_POSTGRES_DSN is unreachable (these tests fail rather than skip): %v", err)
	}
	return conn
}
