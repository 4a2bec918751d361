package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// onePolicyOfEachKind is a Kong Mesh user's file: one policy of each kind
// ecsmesh accepts, with their plural API paths.
var onePolicyOfEachKind = []struct{ kind, plural, name, doc, field string }{
	{"MeshTimeout", "meshtimeouts", "timeout-global", `
spec:
  to:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 20s, connectionTimeout: 2s, http: {requestTimeout: 2s}}`, `"requestTimeout": "2s"`},
	{"MeshRetry", "meshretries", "web-to-backend-retry-http", `
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default: {http: {numRetries: 10, backOff: {baseInterval: 15s, maxInterval: 20m}, retryOn: ["5xx"]}}`, `"numRetries": 10`},
	{"MeshCircuitBreaker", "meshcircuitbreakers", "web-to-backend-circuit-breaker", `
spec:
  targetRef: {kind: MeshSubset, tags: {app: web}}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default: {connectionLimits: {maxConnections: 2, maxPendingRequests: 8, maxRetries: 2, maxRequests: 2}}`, `"maxPendingRequests": 8`},
	{"MeshHealthCheck", "meshhealthchecks", "web-to-backend-check", `
spec:
  targetRef: {kind: MeshSubset, tags: {kuma.io/service: web}}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default: {interval: 10s, timeout: 2s, unhealthyThreshold: 3, healthyThreshold: 1, http: {path: /health, expectedStatuses: [200, 201]}}`, `"path": "/health"`},
	{"MeshHTTPRoute", "meshhttproutes", "http-route-1", `
spec:
  targetRef: {kind: MeshService, name: frontend}
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      default:
        backendRefs:
        - {kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 90}
        - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}`, `"weight": 90`},
	{"MeshTCPRoute", "meshtcproutes", "tcp-route-1", `
spec:
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - default: {backendRefs: [{kind: MeshService, name: external-backend}]}`, `"external-backend"`},
	{"MeshRateLimit", "meshratelimits", "backend-rate-limit", `
spec:
  targetRef: {kind: MeshSubset, tags: {app: backend}}
  from:
  - targetRef: {kind: Mesh}
    default: {local: {http: {requestRate: {num: 5, interval: 10s}, onRateLimit: {status: 423}}}}`, `"status": 423`},
	{"MeshFaultInjection", "meshfaultinjections", "default-fault-injection", `
spec:
  targetRef: {kind: MeshSubset, tags: {app: backend}}
  from:
  - targetRef: {kind: MeshSubset, tags: {kuma.io/service: frontend}}
    default: {http: [{abort: {httpStatus: 500, percentage: 50}}]}`, `"httpStatus": 500`},
}

// TestPolicyKindsThroughTheAPI applies one policy of each kind in one file,
// reads each back at Kuma's path, lists, replaces and deletes them, and
// checks that an invalid policy is refused with its field paths.
func TestPolicyKindsThroughTheAPI(t *testing.T) {
	srv, _ := newServer(t, "")
	docs := []string{"type: Mesh\nname: default"}
	for _, p := range onePolicyOfEachKind {
		docs = append(docs, "type: "+p.kind+"\nmesh: default\nname: "+p.name+p.doc)
	}
	status, body := do(t, "POST", srv.URL+"/apply", "", strings.Join(docs, "\n---\n"))
	if status != 200 {
		t.Fatalf("apply: %d %s", status, body)
	}
	var applied struct {
		Items    []json.RawMessage `json:"items"`
		Warnings []string          `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &applied); err != nil || len(applied.Items) != len(docs) {
		t.Fatalf("apply answered %d items (%v): %s", len(applied.Items), err, body)
	}
	if len(applied.Warnings) != 0 {
		t.Fatalf("apply warned %v: every traffic policy kind is applied to proxies", applied.Warnings)
	}
	for _, p := range onePolicyOfEachKind {
		path := "/meshes/default/" + p.plural + "/" + p.name
		status, body := do(t, "GET", srv.URL+path, "", "")
		if status != 200 || !strings.Contains(body, `"type": "`+p.kind+`"`) || !strings.Contains(body, p.field) {
			t.Errorf("GET %s: %d %s; want the %s with %s", path, status, body, p.kind, p.field)
		}
		status, body = do(t, "GET", srv.URL+"/meshes/default/"+p.plural, "", "")
		if status != 200 || !strings.Contains(body, `"total": 1`) {
			t.Errorf("list %s: %d %s", p.plural, status, body)
		}
		if status, body = do(t, "GET", srv.URL+"/"+p.plural, "", ""); status != 200 || !strings.Contains(body, p.name) {
			t.Errorf("list %s across meshes: %d %s", p.plural, status, body)
		}
	}

	// PUT replaces at the kind's path (the body may omit type, mesh and name).
	path := "/meshes/default/meshtimeouts/timeout-global"
	status, body = do(t, "PUT", srv.URL+path, "", strings.TrimPrefix(onePolicyOfEachKind[0].doc, "\n")+"\n  - targetRef: {kind: MeshService, name: backend}\n    default: {idleTimeout: 1m}\n")
	if status != 200 || !strings.Contains(body, `"idleTimeout": "1m0s"`) {
		t.Fatalf("PUT %s: %d %s", path, status, body)
	}

	// An invalid policy is refused with Kuma-style field paths.
	status, body = do(t, "PUT", srv.URL+"/meshes/default/meshretries/bad", "", `
spec:
  to:
  - targetRef: {kind: MeshService, name: backend, namespace: kuma-demo}
    default: {http: {retryOn: [Sometimes]}}`)
	p := problem.Decode(status, []byte(body))
	if status != 400 || p == nil {
		t.Fatalf("invalid policy: %d %s", status, body)
	}
	want := map[string]bool{"spec.to[0].targetRef.namespace": false, "spec.to[0].default.http.retryOn[0]": false}
	for _, c := range p.Causes {
		if _, ok := want[c.Field]; ok {
			want[c.Field] = true
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("cause %s missing in %s", f, body)
		}
	}

	if status, body := do(t, "DELETE", srv.URL+"/meshes/default", "", ""); status != 409 {
		t.Errorf("DELETE a mesh holding policies: %d %s, want 409", status, body)
	}
	for _, p := range onePolicyOfEachKind {
		if status, body := do(t, "DELETE", srv.URL+"/meshes/default/"+p.plural+"/"+p.name, "", ""); status != 200 {
			t.Errorf("DELETE %s %s: %d %s", p.plural, p.name, status, body)
		}
	}
	if status, body := do(t, "DELETE", srv.URL+"/meshes/default", "", ""); status != 200 {
		t.Errorf("DELETE the emptied mesh: %d %s", status, body)
	}
}
