package agent_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/api/envoybootstrap"
	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/bootstrap/agent"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecsmeta"
)

// waitRunning waits until the fake Envoy runs and the app is Ready at the CP.
func waitRunning(t *testing.T, w *world, r *running) {
	t.Helper()
	eventually(t, r.clk, time.Second, "envoy started", func() bool { return r.envoy.Has("started") })
	if r.envoy.Has("error") {
		t.Fatalf("fake envoy: %v", r.envoy.Events())
	}
}

func TestHappyPathToRunningEnvoy(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	r := w.startAgent(w.httpClient())
	waitRunning(t, w, r)

	// The bootstrap Envoy received is valid and points at the CP with the
	// reloadable token file.
	b, err := envoybootstrap.Parse(r.envoy.Bootstrap())
	if err != nil {
		t.Fatalf("bootstrap given to envoy: %v", err)
	}
	if b.GetNode().GetId() != "default.web-"+taskID || b.GetNode().GetCluster() != "web" {
		t.Fatalf("node = %v", b.GetNode())
	}
	js := string(r.envoy.Bootstrap())
	for _, want := range []string{envoybootstrap.FileBasedMetadata, r.a.TokenPath(), "127.0.0.1:"} {
		if !strings.Contains(js, want) {
			t.Errorf("bootstrap lacks %s", want)
		}
	}
	if args := strings.Join(r.envoy.Args(), " "); !strings.Contains(args, "-c "+r.a.BootstrapPath()) {
		t.Fatalf("envoy args %q", args)
	}
	// Envoy read the token the agent wrote.
	tok, _ := os.ReadFile(r.a.TokenPath())
	eventually(t, nil, 0, "envoy reads the token", func() bool {
		toks := r.envoy.Tokens()
		return len(toks) > 0 && toks[len(toks)-1] == string(tok)
	})
	// The Dataplane was created by /bootstrap with the ECS labels, and
	// health sync keeps it Ready.
	dp := w.dataplane()
	if dp == nil || dp.Labels[resource.LabelOrigin] != resource.OriginBootstrap || dp.Labels[resource.LabelECSCluster] != "prod" || dp.Networking.Address != "10.0.1.23" {
		t.Fatalf("stored dataplane %+v", dp)
	}
	eventually(t, r.clk, time.Second, "inbound ready", func() bool { return w.inboundState() == resource.StateReady })
	// The container health check passes.
	eventually(t, r.clk, 0, "readiness endpoint", func() bool {
		resp, err := http.Get("http://" + r.a.ReadinessAddr() + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func TestSIGTERMOrdering(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	r := w.startAgent(w.httpClient())
	waitRunning(t, w, r)
	eventually(t, r.clk, time.Second, "inbound ready", func() bool { return w.inboundState() == resource.StateReady })

	r.sigs <- syscall.SIGHUP
	eventually(t, nil, 0, "SIGHUP forwarded", func() bool { return r.envoy.Has("signal hangup") })

	r.sigs <- syscall.SIGTERM
	// First: not ready at the CP, while Envoy still runs.
	eventually(t, nil, 0, "inbound not ready", func() bool { return w.inboundState() == resource.StateNotReady })
	if r.envoy.Has("signal terminated") {
		t.Fatal("envoy was stopped before the inbounds were marked not ready")
	}
	resp, err := http.Get("http://" + r.a.ReadinessAddr() + "/ready")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("agent still reports ready while draining")
		}
	}
	eventually(t, nil, 0, "envoy asked to drain its listeners", func() bool { return r.envoy.Has("drain_listeners") })
	// Drain time is 1h: the health interval passes, Envoy keeps running
	// while the app runs.
	r.clk.Advance(5 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if r.envoy.Has("signal terminated") {
		t.Fatal("envoy stopped while the app was still running and the drain time not over")
	}
	// Last: the app stops, the agent stops Envoy and exits with its status.
	code := 0
	if err := w.meta.SetKnownStatus("app", "STOPPED", &code); err != nil {
		t.Fatal(err)
	}
	if err := r.result(t, time.Second); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !r.envoy.Has("signal terminated") || !r.envoy.Has("exit 0") {
		t.Fatalf("envoy events %v", r.envoy.Events())
	}
}

func TestSIGTERMExitStatusAndDrainTime(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	t.Setenv("ECSMESH_FAKE_ENVOY_SIGNAL_EXIT", "3")
	r := w.startAgent(w.httpClient())
	waitRunning(t, w, r)
	r.sigs <- syscall.SIGTERM
	// The app never stops: the drain time (1h) ends it.
	err := r.result(t, 10*time.Minute)
	var ee *agent.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Unexpected {
		t.Fatalf("Run = %v", err)
	}
	if w.inboundState() != resource.StateNotReady {
		t.Fatalf("state %s", w.inboundState())
	}
}

func TestCPDownAtStartThenUp(t *testing.T) {
	w := newWorld(t)
	// Start once so that the CA exists (the agent is configured with it),
	// then stop: the agent starts while the CP is down.
	w.startCP()
	client := w.httpClient()
	w.stopCP()
	r := w.startAgent(client)
	eventually(t, r.clk, 0, "a failed attempt", func() bool { return r.logs.Contains("cannot reach control plane at https://" + w.apiAddr) })
	if r.envoy.Has("started") {
		t.Fatal("envoy started without a bootstrap")
	}
	w.startCP()
	waitRunning(t, w, r)
	if !r.logs.Contains("bootstrap failed; retrying") {
		t.Fatal("no retry logged")
	}
}

func TestSTSThrottlingDuringRefresh(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	r := w.startAgent(w.httpClient())
	waitRunning(t, w, r)
	first, _ := os.ReadFile(r.a.TokenPath())

	// STS throttles every attempt of the CP's next login (3 attempts).
	w.cloud.STS.Faults().Inject(awsfault.Fault{Kind: awsfault.Throttle, Times: 3})
	r.clk.Advance(31 * time.Minute) // past half of the 1h token life
	eventually(t, nil, 0, "refresh failure logged", func() bool {
		return r.logs.Contains("token refresh failed; keeping the current token")
	})
	if cur, _ := os.ReadFile(r.a.TokenPath()); string(cur) != string(first) {
		t.Fatal("the token file changed although the refresh failed")
	}
	if r.logs.Contains("sts_unavailable") == false {
		t.Fatal("the CP's reason is not in the log")
	}
	// The retry succeeds once STS answers again.
	eventually(t, r.clk, time.Second, "token refreshed", func() bool { return r.logs.Contains("dataplane token refreshed") })
	second, _ := os.ReadFile(r.a.TokenPath())
	if string(second) == string(first) || len(second) == 0 {
		t.Fatal("the token was not replaced")
	}
	if hits := w.cloud.STS.Faults().Hits(); hits != 3 {
		t.Fatalf("STS faults hit %d times", hits)
	}
	// Token file rotation seen by a reader: the fake Envoy read both.
	eventually(t, nil, 0, "envoy reads the new token", func() bool {
		toks := r.envoy.Tokens()
		return len(toks) >= 2 && toks[0] == string(first) && toks[len(toks)-1] == string(second)
	})
	if r.envoy.Has("error empty token file") {
		t.Fatal("envoy saw a partial token file")
	}
}

func TestAppUnhealthyRemovesEndpoint(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	r := w.startAgent(w.httpClient())
	waitRunning(t, w, r)
	eventually(t, r.clk, time.Second, "inbound ready", func() bool { return w.inboundState() == resource.StateReady })
	if err := w.meta.SetHealth("app", fakeecsmeta.Unhealthy); err != nil {
		t.Fatal(err)
	}
	eventually(t, r.clk, time.Second, "inbound not ready", func() bool { return w.inboundState() == resource.StateNotReady })
	if err := w.meta.SetHealth("app", fakeecsmeta.Healthy); err != nil {
		t.Fatal(err)
	}
	eventually(t, r.clk, time.Second, "inbound ready again", func() bool { return w.inboundState() == resource.StateReady })
}

func TestRefusedLoginNamesTheFix(t *testing.T) {
	w := newWorld(t)
	if err := w.cloud.IAM.SetTags(acct, "web", map[string]string{"kuma.io/type": "dataplane"}); err != nil {
		t.Fatal(err)
	}
	w.startCP()
	r := w.startAgent(w.httpClient())
	err := r.result(t, time.Second)
	if err == nil || !strings.Contains(err.Error(), "IAM role "+w.role+" lacks tag kuma.io/mesh") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("Run = %v", err)
	}
	if r.envoy.Has("started") || w.dataplane() != nil {
		t.Fatal("a refused agent started envoy or stored its Dataplane")
	}
}

func TestEnvoyCrash(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	t.Setenv("ECSMESH_FAKE_ENVOY_EXIT_NOW", "9")
	r := w.startAgent(w.httpClient())
	err := r.result(t, time.Second)
	var ee *agent.ExitError
	if !errors.As(err, &ee) || ee.Code != 9 || !ee.Unexpected {
		t.Fatalf("Run = %v", err)
	}
	if w.inboundState() != resource.StateNotReady {
		t.Fatalf("state after crash: %s", w.inboundState())
	}
}

// TestDataplaneDeletedUnderRunningAgentIsRestored: when the control plane
// loses the Dataplane (deleted by an operator, or a CP that lost its state),
// health sync gets 404 and the agent registers again with a fresh login,
// without restarting Envoy.
func TestDataplaneDeletedUnderRunningAgentIsRestored(t *testing.T) {
	w := newWorld(t)
	w.startCP()
	r := w.startAgent(w.httpClient())
	waitRunning(t, w, r)
	eventually(t, r.clk, time.Second, "inbound ready", func() bool { return w.inboundState() == resource.StateReady })
	key := store.Key{Kind: resource.KindDataplane, Mesh: "default", Name: "web-" + taskID}
	if err := store.DeleteRecord(context.Background(), w.st, key, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, r.clk, time.Second, "the Dataplane registered again", func() bool { return w.dataplane() != nil })
	eventually(t, r.clk, time.Second, "inbound ready again", func() bool { return w.inboundState() == resource.StateReady })
	started := 0
	for _, e := range r.envoy.Events() {
		if strings.HasPrefix(e, "started") {
			started++
		}
	}
	if n := started; n != 1 {
		t.Errorf("Envoy started %d times, want once (re-registering must not restart it)", n)
	}
}
