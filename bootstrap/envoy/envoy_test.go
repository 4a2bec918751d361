package envoy_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/bootstrap/envoy"
	"github.com/ecsmesh/ecsmesh/internal/test/envoytest"
)

func TestMain(m *testing.M) {
	envoytest.RunIfFake()
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeBootstrap(t *testing.T, dir string) string {
	t.Helper()
	b, err := envoybootstrap.Build(envoybootstrap.Params{Mesh: "default", Name: "web-1", XDSHost: "127.0.0.1", XDSPort: 5679, TokenFile: filepath.Join(dir, "token"), AdminPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := envoybootstrap.Marshal(b)
	p := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(p, js, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func self(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestStartSignalStop(t *testing.T) {
	tests := []struct {
		name       string
		signalExit string
		wantCode   int
	}{
		{"clean exit", "0", 0},
		{"exit status propagates", "3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := envoytest.Record{Dir: t.TempDir()}
			t.Setenv(envoytest.EnvDir, rec.Dir)
			t.Setenv(envoytest.EnvSignalExit, tt.signalExit)
			work := t.TempDir()
			if err := os.WriteFile(filepath.Join(work, "token"), []byte("tok-1"), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := envoy.Start(context.Background(), envoy.Options{Binary: self(t), BootstrapPath: writeBootstrap(t, work), DrainTime: 30 * time.Second,
				Env: []string{"ECSMESH_SERVICE=web"}})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "fake envoy started", func() bool { return rec.Has("token tok-1") })
			if !rec.Has("env ECSMESH_SERVICE=web") {
				t.Errorf("Envoy's environment lacks Options.Env: %v", rec.Events())
			}
			args := strings.Join(rec.Args(), " ")
			if !strings.Contains(args, "-c "+filepath.Join(work, "bootstrap.json")) || !strings.Contains(args, "--drain-time-s 30") {
				t.Fatalf("args = %q", args)
			}
			if err := p.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			eventually(t, "SIGHUP forwarded", func() bool { return rec.Has("signal hangup") })
			if code := p.Stop(nil); code != tt.wantCode {
				t.Fatalf("exit code %d, want %d", code, tt.wantCode)
			}
			if !rec.Has("signal terminated") {
				t.Fatalf("events %v", rec.Events())
			}
			if err := p.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("signalling an exited envoy: %v", err)
			}
		})
	}
}

func TestCrashAndKill(t *testing.T) {
	rec := envoytest.Record{Dir: t.TempDir()}
	t.Setenv(envoytest.EnvDir, rec.Dir)
	t.Setenv(envoytest.EnvExitNow, "7")
	p, err := envoy.Start(context.Background(), envoy.Options{Binary: self(t), BootstrapPath: writeBootstrap(t, t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if p.ExitCode() != 7 {
		t.Fatalf("exit code %d", p.ExitCode())
	}

}

func TestKillAfterGrace(t *testing.T) {
	rec := envoytest.Record{Dir: t.TempDir()}
	t.Setenv(envoytest.EnvDir, rec.Dir)
	t.Setenv(envoytest.EnvIgnoreTerm, "1")
	p, err := envoy.Start(context.Background(), envoy.Options{Binary: self(t), BootstrapPath: writeBootstrap(t, t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "fake envoy started", func() bool { return rec.Has("started") })
	grace := make(chan time.Time)
	go func() {
		eventually(t, "SIGTERM seen", func() bool { return rec.Has("signal terminated") })
		grace <- time.Now()
	}()
	if code := p.Stop(grace); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("killed exit code %d", code)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := envoy.Start(context.Background(), envoy.Options{Binary: "no-such-envoy-binary", BootstrapPath: "x"})
	if err == nil || !strings.Contains(err.Error(), "--envoy-binary") {
		t.Fatalf("err = %v", err)
	}
}
