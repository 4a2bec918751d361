package cp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ecsmesh/ecsmesh/controlplane/vip"
)

// demoMesh is the demo's mesh (make demo): web and redis, web's calls to
// redis governed by a MeshTrafficPermission, plus a MeshTimeout.
const demoMesh = `type: Mesh
name: default
---
type: Dataplane
mesh: default
name: web-1
labels: {kuma.io/workload: web, ecsmesh.io/ecs-cluster: demo, ecsmesh.io/bind-outbounds: "true"}
networking:
  address: 10.0.0.1
  inbound: [{port: 15000, servicePort: 8080, tags: {kuma.io/service: web, kuma.io/protocol: http}}]
---
type: Dataplane
mesh: default
name: web-2
labels: {kuma.io/workload: web, ecsmesh.io/ecs-cluster: demo}
networking:
  address: 10.0.0.2
  inbound: [{port: 15000, servicePort: 8080, tags: {kuma.io/service: web, kuma.io/protocol: http}}]
---
type: Dataplane
mesh: default
name: redis-1
labels: {kuma.io/workload: redis, ecsmesh.io/ecs-cluster: demo}
networking:
  address: 10.0.0.3
  inbound: [{port: 15000, servicePort: 6379, tags: {kuma.io/service: redis, kuma.io/protocol: tcp}}]
---
type: MeshTrafficPermission
mesh: default
name: web-to-redis
spec:
  targetRef: {kind: MeshService, name: redis}
  from:
  - spiffeID: {type: Exact, value: "spiffe://default.mesh.local/workload/web"}
    action: Allow
---
type: MeshTimeout
mesh: default
name: redis-timeouts
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: redis}
    default: {idleTimeout: 1h, connectionTimeout: 5s}
`

const guiTestToken = "gui-browser-test-token"

// chromium finds Debian's chromium (or ECSMESH_CHROMIUM). The browser
// test is part of make test: without a browser it fails, never skips
// (.ci/run installs the chromium package).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ECSMESH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("cp: no chromium on PATH: install Debian's chromium package (apt-get install -y chromium) or set ECSMESH_CHROMIUM; the GUI browser test never skips")
	return ""
}

// adminJSON GETs an admin API path with the token.
func adminJSON(t *testing.T, base, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+guiTestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// browserProblems collects console errors, uncaught exceptions and
// security (CSP) log entries.
type browserProblems struct {
	mu   sync.Mutex
	list []string
}

func (b *browserProblems) add(s string) {
	b.mu.Lock()
	b.list = append(b.list, s)
	b.mu.Unlock()
}

func (b *browserProblems) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.list
	b.list = nil
	return out
}

func (b *browserProblems) listen(ev any) {
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning || e.Type == runtime.APITypeAssert {
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.add(fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		desc := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			desc += " " + e.ExceptionDetails.Exception.Description
		}
		b.add("exception: " + desc)
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.LevelError || e.Entry.Level == cdplog.LevelWarning || e.Entry.Source == cdplog.SourceSecurity {
			b.add(fmt.Sprintf("log %s/%s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL))
		}
	}
}

func TestGUIInBrowser(t *testing.T) {
	browser := chromium(t)
	r := start(t, testConfig(t, map[string]string{"ECSMESH_ADMIN_TOKEN": guiTestToken}))
	base := "http://" + r.srv.Addrs().Admin
	req, _ := http.NewRequest("POST", base+"/apply", strings.NewReader(demoMesh))
	req.Header.Set("Authorization", "Bearer "+guiTestToken)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("apply the demo mesh: %d %s", resp.StatusCode, b)
	}
	// The DNS reconciler hands out the VIPs.
	var vips map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := vip.List(t.Context(), r.srv.Store(), "default")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 {
			vips = map[string]string{}
			for s, a := range got {
				vips[s] = a.String()
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VIPs not allocated: %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// What the admin API says.
	var dpList struct {
		Items []struct {
			Name       string `json:"name"`
			Networking struct {
				Inbound []struct {
					Tags map[string]string `json:"tags"`
				} `json:"inbound"`
			} `json:"networking"`
		} `json:"items"`
	}
	adminJSON(t, base, "/meshes/default/dataplanes", &dpList)
	var wantDPs []string
	wantServices := map[string]bool{}
	for _, it := range dpList.Items {
		wantDPs = append(wantDPs, it.Name)
		for _, in := range it.Networking.Inbound {
			wantServices[in.Tags["kuma.io/service"]] = true
		}
	}
	sort.Strings(wantDPs)
	var inspect map[string]any
	adminJSON(t, base, "/meshes/default/dataplanes/web-1/xds", &inspect)
	inspectText, _ := json.Marshal(inspect)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()
	problems := &browserProblems{}
	chromedp.ListenTarget(ctx, problems.listen)
	run := func(step string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if p := problems.take(); len(p) > 0 {
			t.Fatalf("%s: the browser reported problems:\n%s", step, strings.Join(p, "\n"))
		}
	}
	text := func(sel string, out *string) chromedp.Action { return chromedp.Text(sel, out, chromedp.ByQuery) }
	texts := func(sel string, out *[]string) chromedp.Action {
		return chromedp.Evaluate(fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).filter(e => !e.closest("tr").hidden).map(e => e.textContent.trim())`, sel), out)
	}

	// Sign in with the token through the form.
	var loc string
	run("login", cdplog.Enable(), runtime.Enable(),
		chromedp.Navigate(base+"/gui/"), chromedp.WaitVisible("#token", chromedp.ByID), chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/gui/login") {
		t.Fatalf("without a session /gui/ went to %s, want the login form", loc)
	}
	var loginErr string
	if err := chromedp.Run(ctx, chromedp.SendKeys("#token", "not-the-token", chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("#login-error", chromedp.ByID), text("#login-error", &loginErr)); err != nil {
		t.Fatalf("wrong token: %v", err)
	}
	// The refusal is a 401, which the browser logs; nothing else may be.
	if p := problems.take(); len(p) != 1 || !strings.Contains(p[0], "401") {
		t.Fatalf("wrong token: the browser reported %v, want the one 401", p)
	}
	run("sign in", chromedp.SendKeys("#token", guiTestToken, chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("#count-services", chromedp.ByID))

	// Overview.
	var nServices, nDPs string
	run("overview", text("#count-services", &nServices), text("#count-dataplanes", &nDPs))
	if nServices != fmt.Sprint(len(wantServices)) || nDPs != fmt.Sprint(len(wantDPs)) {
		t.Fatalf("overview: %s services, %s dataplanes; the admin API has %d and %d", nServices, nDPs, len(wantServices), len(wantDPs))
	}
	if dir := os.Getenv("ECSMESH_GUI_SCREENSHOTS"); dir != "" {
		shot(t, ctx, dir, "gui-overview.png")
	}

	// Dataplanes list matches the admin API.
	var gotDPs []string
	run("dataplanes", chromedp.Navigate(base+"/gui/dataplanes"), chromedp.WaitVisible("#dataplanes", chromedp.ByID), texts("#dataplanes a.dp", &gotDPs))
	sort.Strings(gotDPs)
	if strings.Join(gotDPs, ",") != strings.Join(wantDPs, ",") {
		t.Fatalf("dataplanes page shows %v; the admin API lists %v", gotDPs, wantDPs)
	}
	// The filter box hides the rows that do not match.
	var shown []string
	run("filter", chromedp.SendKeys("input.filter-box", "redis", chromedp.ByQuery), texts("#dataplanes a.dp", &shown))
	if strings.Join(shown, ",") != "redis-1" {
		t.Fatalf("filtering for redis shows %v", shown)
	}
	// Server-side search and sort are deep links.
	run("search link", chromedp.Navigate(base+"/gui/dataplanes?q=web&sort=name&dir=desc"), chromedp.WaitVisible("#dataplanes", chromedp.ByID),
		texts("#dataplanes a.dp", &shown))
	if strings.Join(shown, ",") != "web-2,web-1" {
		t.Fatalf("?q=web&sort=name&dir=desc shows %v", shown)
	}

	// Services list: names and VIPs match the admin API and the store.
	var svcNames, svcVIPs []string
	run("services", chromedp.Navigate(base+"/gui/services"), chromedp.WaitVisible("#services", chromedp.ByID),
		texts("#services a.svc", &svcNames), texts("#services td.vip", &svcVIPs))
	if len(svcNames) != len(wantServices) {
		t.Fatalf("services page shows %v; the admin API's dataplanes serve %v", svcNames, wantServices)
	}
	for i, n := range svcNames {
		if !wantServices[n] || svcVIPs[i] != vips[n] {
			t.Errorf("service %s shows VIP %s; allocated %s", n, svcVIPs[i], vips[n])
		}
		// web-1 binds every reachable service's VIP: the admin API's
		// xDS view of it holds each one.
		if !strings.Contains(string(inspectText), `"`+svcVIPs[i]+`"`) {
			t.Errorf("VIP %s of %s is not in the admin API's xDS view of web-1", svcVIPs[i], n)
		}
	}

	// Follow a service link to its dataplanes, then a dataplane link to
	// its detail page.
	run("service link", chromedp.Click(`#services tr[data-service="redis"] a.svc`, chromedp.ByQuery),
		chromedp.WaitVisible("#dataplanes", chromedp.ByID), texts("#dataplanes a.dp", &shown))
	if strings.Join(shown, ",") != "redis-1" {
		t.Fatalf("redis's link shows dataplanes %v", shown)
	}
	run("dataplanes again", chromedp.Navigate(base+"/gui/dataplanes"), chromedp.WaitVisible("#dataplanes", chromedp.ByID))
	var listeners []string
	var status string
	run("dataplane link", chromedp.Click(`#dataplanes tr[data-dataplane="web-1"] a.dp`, chromedp.ByQuery),
		chromedp.WaitVisible("#listeners", chromedp.ByID), text("#status", &status),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#listeners td.addr")).map(e => e.textContent)`, &listeners))
	if !strings.Contains(status, "never connected") || len(listeners) == 0 {
		t.Fatalf("web-1: status %q, listeners %v", status, listeners)
	}
	for _, v := range vips {
		if !strings.Contains(strings.Join(listeners, " "), v+":") {
			t.Errorf("web-1's page lists no listener on VIP %s: %v", v, listeners)
		}
	}
	if dir := os.Getenv("ECSMESH_GUI_SCREENSHOTS"); dir != "" {
		shot(t, ctx, dir, "gui-dataplane.png")
	}

	// Policies: every kind applied, with a YAML view.
	var kinds []string
	run("policies", chromedp.Navigate(base+"/gui/policies"), chromedp.WaitVisible("#policies", chromedp.ByID),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#policies tr")).map(e => e.dataset.kind).filter(Boolean)`, &kinds))
	sort.Strings(kinds)
	if strings.Join(kinds, ",") != "Mesh,MeshTimeout,MeshTrafficPermission" {
		t.Fatalf("policies page lists kinds %v", kinds)
	}
	var yamlText string
	run("policy link", chromedp.Click(`#policies tr[data-name="web-to-redis"] a.policy`, chromedp.ByQuery),
		chromedp.WaitVisible("#yaml", chromedp.ByID), text("#yaml", &yamlText))
	if !strings.Contains(yamlText, "type: MeshTrafficPermission") || !strings.Contains(yamlText, "spiffe://default.mesh.local/workload/web") {
		t.Fatalf("policy YAML: %s", yamlText)
	}

	// The problem listener works: an inline script the CSP blocks is
	// reported (this is what any violation on a page would look like).
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const s = document.createElement("script"); s.textContent = "1"; document.body.appendChild(s); })()`, nil),
		chromedp.Sleep(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if p := problems.take(); len(p) == 0 {
		t.Fatal("an inline script was not reported as a CSP violation: the console listener sees nothing")
	}
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
