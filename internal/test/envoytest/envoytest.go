// Package envoytest is a fake Envoy for the agent's tests: the test binary
// re-executes itself as "envoy" (call RunIfFake from TestMain). The fake
// records its arguments and bootstrap, validates the bootstrap as Envoy
// would (protojson + ValidateAll), serves the admin endpoints the agent
// uses (GET /ready, POST /drain_listeners), watches the token file of
// file_based_metadata and records every new token it reads, and handles
// SIGTERM/SIGINT by recording them and exiting with a chosen status.
package envoytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	grpccredv3 "github.com/envoyproxy/go-control-plane/envoy/config/grpc_credential/v3"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
)

// Environment variables that drive the fake.
const (
	// EnvDir turns the test binary into the fake and names its record dir.
	EnvDir = "ECSMESH_FAKE_ENVOY_DIR"
	// EnvSignalExit is the exit status after SIGTERM/SIGINT (default 0).
	EnvSignalExit = "ECSMESH_FAKE_ENVOY_SIGNAL_EXIT"
	// EnvExitNow makes the fake exit with that status right after start.
	EnvExitNow = "ECSMESH_FAKE_ENVOY_EXIT_NOW"
	// EnvIgnoreTerm makes the fake record SIGTERM/SIGINT and keep running.
	EnvIgnoreTerm = "ECSMESH_FAKE_ENVOY_IGNORE_TERM"
)

// FakeStats is what the fake's admin answers on GET /stats/prometheus.
const FakeStats = `# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 42
# TYPE envoy_server_live gauge
envoy_server_live 1
`

// Files written in the record dir.
const (
	FileArgs      = "args"
	FileBootstrap = "bootstrap.json"
	FileEvents    = "events"
)

// RunIfFake runs the fake and exits when EnvDir is set; otherwise it
// returns. Call it first in TestMain.
func RunIfFake() {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		return
	}
	os.Exit(run(dir))
}

func run(dir string) int {
	ev := func(format string, args ...any) {
		f, err := os.OpenFile(filepath.Join(dir, FileEvents), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		fmt.Fprintf(f, format+"\n", args...)
		f.Close()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	args := os.Args[1:]
	_ = os.WriteFile(filepath.Join(dir, FileArgs), []byte(strings.Join(args, "\n")), 0o600)
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "ECSMESH_SERVICE=") || strings.HasPrefix(e, "ECSMESH_ADDRESS=") {
			ev("env %s", e)
		}
	}
	path := ""
	for i, a := range args {
		if a == "-c" && i+1 < len(args) {
			path = args[i+1]
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		ev("error reading bootstrap: %v", err)
		return 1
	}
	_ = os.WriteFile(filepath.Join(dir, FileBootstrap), data, 0o600)
	b, err := envoybootstrap.Parse(data)
	if err != nil {
		ev("error invalid bootstrap: %v", err)
		return 1
	}
	if code := os.Getenv(EnvExitNow); code != "" {
		n, _ := strconv.Atoi(code)
		ev("exit %d", n)
		return n
	}
	admin := b.GetAdmin().GetAddress().GetSocketAddress()
	ln, err := net.Listen("tcp", net.JoinHostPort(admin.GetAddress(), strconv.Itoa(int(admin.GetPortValue()))))
	if err != nil {
		ev("error admin listener: %v", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("LIVE\n")) })
	mux.HandleFunc("POST /drain_listeners", func(w http.ResponseWriter, r *http.Request) {
		ev("drain_listeners %s", r.URL.RawQuery)
	})
	mux.HandleFunc("GET /stats/prometheus", func(w http.ResponseWriter, r *http.Request) {
		ev("stats %s", r.URL.RawQuery)
		_, _ = w.Write([]byte(FakeStats))
	})
	go func() { _ = http.Serve(ln, mux) }()
	tokenFile := ""
	for _, s := range b.GetDynamicResources().GetAdsConfig().GetGrpcServices() {
		for _, cc := range s.GetGoogleGrpc().GetCallCredentials() {
			var fb grpccredv3.FileBasedMetadataConfig
			if a := cc.GetFromPlugin().GetTypedConfig(); a != nil && a.UnmarshalTo(&fb) == nil {
				tokenFile = fb.GetSecretData().GetFilename()
			}
		}
	}
	ev("started pid=%d node=%s tokenFile=%s", os.Getpid(), b.GetNode().GetId(), tokenFile)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		select {
		case s := <-sigs:
			ev("signal %s", s)
			if (s == syscall.SIGTERM || s == syscall.SIGINT) && os.Getenv(EnvIgnoreTerm) == "" {
				n, _ := strconv.Atoi(os.Getenv(EnvSignalExit))
				ev("exit %d", n)
				return n
			}
		case <-tick.C:
			if tokenFile == "" {
				continue
			}
			if t, err := os.ReadFile(tokenFile); err == nil && string(t) != last {
				if len(t) == 0 {
					ev("error empty token file")
				}
				last = string(t)
				ev("token %s", last)
			}
		}
	}
}

// Record reads what a fake Envoy wrote to dir.
type Record struct{ Dir string }

// Events returns the recorded events, in order.
func (r Record) Events() []string {
	f, err := os.Open(filepath.Join(r.Dir, FileEvents))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Has reports whether an event starts with prefix.
func (r Record) Has(prefix string) bool {
	for _, e := range r.Events() {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// Tokens returns the distinct tokens the fake read, in order.
func (r Record) Tokens() []string {
	var out []string
	for _, e := range r.Events() {
		if t, ok := strings.CutPrefix(e, "token "); ok {
			out = append(out, t)
		}
	}
	return out
}

// Args returns the fake's command line (without the binary).
func (r Record) Args() []string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, FileArgs))
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// Bootstrap returns the bootstrap the fake was given.
func (r Record) Bootstrap() []byte {
	b, _ := os.ReadFile(filepath.Join(r.Dir, FileBootstrap))
	return b
}
