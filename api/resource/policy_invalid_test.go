package resource

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// head is the start of every case: a policy of kind k named p in mesh default.
func head(k string) string { return "type: " + k + "\nmesh: default\nname: p\nspec:\n" }

// invalidPolicies are refused inputs with the exact violations (field:
// message) they produce, in order. Documented Kuma examples ecsmesh
// refuses are here too, with the reason.
var invalidPolicies = []struct {
	name string
	in   string
	want []string
}{
	{"Kuma docs: logging to multiple backends (Tcp refused)", head("MeshAccessLog") + `
  rules:
  - default:
      backends:
      - {type: Tcp, tcp: {address: 127.0.0.1:5000, format: {type: Json, json: [{key: start_time, value: "%START_TIME%"}]}}}
      - {type: File, file: {path: /dev/stdout, format: {type: Plain, plain: "[%START_TIME%]"}}}`, []string{
		"spec.rules[0].default.backends[0].type: Tcp is not supported by ecsmesh yet: write to a File (/dev/stdout reaches CloudWatch Logs through the awslogs log driver) or export to OpenTelemetry",
	}},
	{"access log backends", head("MeshAccessLog") + `
  to:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - {type: File, file: {path: relative.log, format: {type: Json, json: [{key: a, value: one}, {key: a, value: two}]}}}
      - {type: OpenTelemetry, openTelemetry: {endpoint: collector, body: {kvlistValue: {values: [{key: mesh, value: {stringValue: 1}}]}, mapValue: {}}}}
      - {type: Syslog}
      - {type: File}`, []string{
		"spec.to[0].default.backends[0].file.path: must be an absolute path (e.g. /dev/stdout)",
		"spec.to[0].default.backends[0].file.format.json[1].key: duplicates json[0]",
		`spec.to[0].default.backends[1].openTelemetry.endpoint: must be host:port, got "collector"`,
		"spec.to[0].default.backends[1].openTelemetry.body: must be an OpenTelemetry AnyValue: an object with exactly one of stringValue, boolValue, intValue, doubleValue, bytesValue, arrayValue or kvlistValue",
		`spec.to[0].default.backends[2].type: must be File, Tcp or OpenTelemetry, got "Syslog"`,
		"spec.to[0].default.backends[3].file: must be set with type File",
	}},
	{"trace backends, sampling and tags", head("MeshTrace") + `
  default:
    backends:
    - {type: Zipkin, zipkin: {url: "jaeger:9411/api/v2/spans", apiVersion: grpc}}
    - {type: Datadog, datadog: {url: http://127.0.0.1:8126}}
    sampling: {overall: 120}
    tags: [{name: team, literal: core, header: {name: x-team}}, {name: team, header: {name: "bad header"}}]`, []string{
		"spec.default.backends: must hold at most one backend",
		`spec.default.backends[0].zipkin.url: must be an http:// URL, got "jaeger:9411/api/v2/spans"`,
		`spec.default.backends[0].zipkin.apiVersion: must be httpJson or httpProto, got "grpc"`,
		"spec.default.sampling.overall: must be a percentage from 0 to 100",
		"spec.default.tags[0]: must set exactly one of literal or header",
		"spec.default.tags[1].name: duplicates tags[0]",
		"spec.default.tags[1].header.name: must be a header name",
	}},
	{"Kuma docs: the Basic profile and ProvidedTLS (refused)", head("MeshMetric") + `
  default:
    sidecar:
      profiles:
        appendProfiles: [{name: Basic}, {name: Everything}]
        exclude: [{type: Regex, match: "envoy_(("}, {type: Glob, match: "x*"}]
        include: [{type: Prefix, match: ""}]
    backends:
    - {type: Prometheus, prometheus: {port: 5670, tls: {mode: ProvidedTLS}}}`, []string{
		"spec.default.sidecar.profiles.appendProfiles[0].name: Basic is not supported by ecsmesh yet: use All with exclude/include, or None with include",
		`spec.default.sidecar.profiles.appendProfiles[1].name: must be All or None, got "Everything"`,
		"spec.default.sidecar.profiles.exclude[0].match: must be a regular expression (RE2): error parsing regexp: missing closing ): `envoy_((`",
		`spec.default.sidecar.profiles.exclude[1].type: must be Prefix, Regex, Exact or Contains, got "Glob"`,
		"spec.default.sidecar.profiles.include[0].match: must not be empty",
		`spec.default.backends[0].prometheus.tls.mode: only Disabled is supported by ecsmesh yet, got "ProvidedTLS": scrape inside the VPC`,
	}},
	{"metric applications and backends", head("MeshMetric") + `
  default:
    applications:
    - {port: 0, path: "metrics?x=1"}
    - {port: 8888, address: app.internal}
    - {port: 8888, address: "169.254.170.2", path: /m}
    - {port: 8888, address: "169.254.170.2", path: /m}
    backends:
    - {type: Prometheus, prometheus: {port: 70000, path: "/metrics?debug"}}
    - {type: Prometheus}
    - {type: OpenTelemetry, openTelemetry: {endpoint: "http://otel:4317"}}
    - {type: Statsd}`, []string{
		"spec.default.applications[0].port: must be a port from 1 to 65535, got 0",
		`spec.default.applications[0].path: must be an absolute URL path without query, got "metrics?x=1"`,
		`spec.default.applications[1].address: must be an IP address (the app's, in the task), got "app.internal"`,
		"spec.default.applications[3]: duplicates applications[2]",
		"spec.default.backends[0].prometheus.port: must be a port from 1 to 65535, got 70000",
		`spec.default.backends[0].prometheus.path: must be an absolute URL path without query, got "/metrics?debug"`,
		"spec.default.backends[1]: only one Prometheus backend is supported: the agent serves one endpoint",
		"spec.default.backends[2].type: OpenTelemetry is not supported by ecsmesh yet: use a Prometheus backend and let the CloudWatch agent or an OpenTelemetry collector scrape it",
		`spec.default.backends[3].type: must be Prometheus or OpenTelemetry, got "Statsd"`,
	}},
	{"metric: Kuma's removed sidecar.regex", head("MeshMetric") + `
  default:
    sidecar: {regex: "http2_act.*"}`, []string{
		"spec.default.sidecar.regex: not supported by ecsmesh: removed from Kuma's MeshMetric; use profiles.include with type Regex",
	}},
	{"metric: empty default", head("MeshMetric") + `
  default: {}`, []string{
		"spec.default: must set sidecar, applications or backends",
	}},
	// Decoding: unknown fields, refused Kuma fields, wrong types.
	{"unknown field with its path", head("MeshTimeout") + `
  to:
  - targetRef: {kind: Mesh}
    default: {http: {requestTimeot: 5s}}`, []string{
		"spec.to[0].default.http.requestTimeot: unknown field; check its spelling against docs/policies.md",
		"spec.to[0].default.http: must set at least one timeout",
	}},
	{"wrong types with their paths", head("MeshRetry") + `
  to:
  - targetRef: {kind: Mesh}
    default: {http: {numRetries: "three", retryOn: 5xx, hostSelectionMaxAttempts: 1.5}, tcp: {maxConnectAttempt: -1}}`, []string{
		"spec.to[0].default.http.hostSelectionMaxAttempts: must be a whole number, got 1.5",
		"spec.to[0].default.http.numRetries: must be a whole number, got a string",
		"spec.to[0].default.http.retryOn: must be a list, got a string",
		"spec.to[0].default.tcp.maxConnectAttempt: must be a whole number from 0 to 4294967295, got -1",
		"spec.to[0].default.tcp.maxConnectAttempt: must be set",
		"spec.to[0].default.http: must not be empty",
	}},
	{"bad durations and numbers", head("MeshCircuitBreaker") + `
  to:
  - targetRef: {kind: Mesh}
    default:
      outlierDetection:
        interval: 5 seconds
        healthyPanicThreshold: lots
        detectors: {totalFailures: {consecutive: 3}}`, []string{
		`spec.to[0].default.outlierDetection.healthyPanicThreshold: must be a decimal number such as 50 or "2.5", got "lots"`,
		`spec.to[0].default.outlierDetection.interval: must be a duration string such as "1h" or "90s": "5 seconds"`,
	}},
	{"policy body without spec is accepted at the top level, typos too", "type: MeshTimeout\nmesh: default\nname: p\nto:\n- targetRef: {kind: Mesh}\n  defaults: {idleTimeout: 1s}\n", []string{
		"spec.to[0].defaults: unknown field; check its spelling against docs/policies.md",
		"spec.to[0].default: must set at least one timeout",
	}},

	{"fields other kinds ignore with a warning are errors in a policy", head("MeshTimeout") + `
  provider: {type: Bundled}
  to:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 1s}`, []string{
		"spec.provider: unknown field; check its spelling against docs/policies.md",
	}},

	// Target references.
	{"targetRef kinds: missing, unknown, refused", head("MeshRetry") + `
  targetRef: {kind: MeshGateway, name: edge}
  to:
  - targetRef: {kind: Service, name: backend}
    default: {tcp: {maxConnectAttempt: 1}}
  - targetRef: {name: backend}
    default: {tcp: {maxConnectAttempt: 1}}
  - targetRef: {kind: MeshServiceSubset, name: backend, tags: {version: v2}}
    default: {tcp: {maxConnectAttempt: 1}}
  - targetRef: {kind: MeshExternalService, name: httpbin}
    default: {tcp: {maxConnectAttempt: 1}}`, []string{
		"spec.targetRef.kind: MeshGateway is not supported by ecsmesh: ecsmesh runs sidecars only, no gateways",
		`spec.to[0].targetRef.kind: must be one of Mesh, MeshService here, got "Service"`,
		"spec.to[1].targetRef.kind: must be set to one of Mesh, MeshService",
		`spec.to[2].targetRef.kind: must be one of Mesh, MeshService here, got "MeshServiceSubset"`,
		"spec.to[3].targetRef.kind: MeshExternalService is not supported by ecsmesh: ecsmesh has no MeshExternalService resources",
	}},
	{"targetRef fields per kind", head("MeshTimeout") + `
  targetRef: {kind: Mesh, name: other, tags: {a: b}, proxyTypes: []}
  to:
  - targetRef: {kind: MeshService, tags: {version: v1}, proxyTypes: [Sidecar]}
    default: {idleTimeout: 1s}
  - targetRef: {kind: MeshService, name: "bad name", labels: {app: x}}
    default: {idleTimeout: 1s}`, []string{
		`spec.targetRef.name: must be empty or this policy's mesh "default"`,
		"spec.targetRef.tags: must not be set with kind Mesh",
		"spec.targetRef.proxyTypes: must be absent or list at least one proxy type",
		"spec.to[0].targetRef.name: must be set to the service's kuma.io/service",
		"spec.to[0].targetRef.tags: must not be set with kind MeshService",
		"spec.to[0].targetRef.proxyTypes: must not be set with kind MeshService",
		"spec.to[1].targetRef.name: must be a kuma.io/service value: 1-63 letters, digits, '.', '_' or '-'",
		"spec.to[1].targetRef.labels: not supported by ecsmesh: ecsmesh has no MeshService resources to select by labels; name the service by its kuma.io/service",
	}},
	{"Dataplane and MeshSubset references", head("MeshTimeout") + `
  targetRef: {kind: Dataplane, name: web-1, labels: {app: web}, tags: {a: b}}
  from:
  - targetRef: {kind: MeshSubset, name: x, tags: {"": v, k: ""}}
    default: {idleTimeout: 1s}`, []string{
		"spec.targetRef.tags: must not be set with kind Dataplane",
		"spec.targetRef.labels: either labels or name may be set, not both",
		`spec.from[0].targetRef.kind: must be one of Mesh here, got "MeshSubset"`,
	}},
	{"MeshSubset fields", head("MeshFaultInjection") + `
  targetRef: {kind: MeshSubset, name: x, tags: {"": v, k: ""}, proxyTypes: [Gateway, Ingress]}
  from:
  - targetRef: {kind: Mesh}
    default: {http: []}`, []string{
		"spec.targetRef.name: must not be set with kind MeshSubset",
		`spec.targetRef.tags[""]: key must not be empty`,
		`spec.targetRef.tags["k"]: value must not be empty`,
		"spec.targetRef.proxyTypes[0]: not supported by ecsmesh: ecsmesh runs sidecars only, no gateways",
		`spec.targetRef.proxyTypes[1]: must be Sidecar or Gateway, got "Ingress"`,
	}},
	{"Kuma docs: a single inbound by sectionName is refused", head("MeshTimeout") + `
  targetRef:
    kind: Dataplane
    labels: {app: demo-app}
    sectionName: http
  rules:
  - default: {idleTimeout: 1h, connectionTimeout: 10s}`, []string{
		"spec.targetRef.sectionName: not supported by ecsmesh: ecsmesh inbounds and services have no named sections (ports); target the service or Dataplane as a whole",
	}},
	{"Kuma docs (Kubernetes form): namespace and port are refused", head("MeshHTTPRoute") + `
  to:
  - targetRef: {kind: MeshService, name: backend, namespace: kuma-demo}
    rules:
    - matches: [{path: {type: PathPrefix, value: /v2}}]
      default:
        backendRefs: [{kind: MeshService, name: backend-v2, namespace: kuma-demo, port: 3001}]`, []string{
		"spec.to[0].rules[0].default.backendRefs[0].namespace: not supported by ecsmesh: Kubernetes namespaces do not exist on ECS; name the service by its kuma.io/service",
		"spec.to[0].rules[0].default.backendRefs[0].port: not supported by ecsmesh: port selects a port of a MeshService resource; ecsmesh names services by kuma.io/service, one port each",
		"spec.to[0].targetRef.namespace: not supported by ecsmesh: Kubernetes namespaces do not exist on ECS; name the service by its kuma.io/service",
	}},
	{"Kuma docs: policies targeting a MeshHTTPRoute or gateways are refused", head("MeshTimeout") + `
  targetRef: {kind: MeshHTTPRoute, name: route-to-backend-v2}
  to:
  - targetRef: {kind: Mesh}
    default: {http: {requestTimeout: 5s}}
---
type: MeshTimeout
mesh: default
name: gw
spec:
  targetRef: {kind: Mesh, proxyTypes: ["Gateway"]}
  to:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 1h}`, []string{
		"document[0].spec.targetRef.kind: MeshHTTPRoute is not supported by ecsmesh: policies cannot target a MeshHTTPRoute; target the Mesh, a service or a Dataplane instead",
		"document[1].spec.targetRef.proxyTypes[0]: not supported by ecsmesh: ecsmesh runs sidecars only, no gateways",
	}},

	// MeshTimeout.
	{"MeshTimeout: shape and ranges", head("MeshTimeout") + `
  to:
  - targetRef: {kind: Mesh}
    default: {connectionTimeout: 0s, idleTimeout: -1s, http: {}}
  - targetRef: {kind: Mesh}
    default: {}
  rules:
  - default: {http: {requestTimeout: -5s}}
  - matches: [{spiffeID: {type: Exact, value: x}}]
    default: {idleTimeout: 1s}`, []string{
		"spec.rules[1].matches: not supported by ecsmesh: rules apply to all inbound traffic; matching callers inside rules is not implemented, use spec.from",
		"spec: to and from must be empty when rules is set",
		"spec.to[0].default.connectionTimeout: must be greater than zero",
		"spec.to[0].default.idleTimeout: must not be negative (0 turns it off)",
		"spec.to[0].default.http: must set at least one timeout",
		"spec.to[1].default: must set at least one timeout",
		"spec.rules[0].default.http.requestTimeout: must not be negative (0 turns it off)",
	}},
	{"MeshTimeout: nothing to do", head("MeshTimeout") + "  targetRef: {kind: Mesh}\n", []string{
		"spec: at least one of to, from or rules must be set",
	}},

	// MeshRetry.
	{"MeshRetry: conditions, back-off, headers, hosts", head("MeshRetry") + `
  to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      http:
        perTryTimeout: -1s
        retryOn: [5xx, "503", "600", "0503", Timeout]
        backOff: {baseInterval: 2s, maxInterval: 1s}
        rateLimitedBackOff: {maxInterval: 0s}
        retriableRequestHeaders: [{type: Suffix, name: x}, {type: Present, name: "bad header", value: v}, {type: RegularExpression, name: x-re, value: "a("}]
        hostSelection: [{predicate: OmitPreviousPriorities}, {predicate: OmitPreviousPriorities, updateFrequency: 1}, {predicate: OmitHostsWithTags, tags: {a: b}}]
        hostSelectionMaxAttempts: -1
      grpc: {retryOn: [Unavailable, NotFound], backOff: {}}
      tcp: {maxConnectAttempt: 0}`, []string{
		"spec.to[0].default.http.hostSelection[2].tags: not supported by ecsmesh: OmitHostsWithTags is not supported: ecsmesh endpoints carry no tag metadata",
		"spec.to[0].default.tcp.maxConnectAttempt: must be greater than zero",
		"spec.to[0].default.http.perTryTimeout: must not be negative (0 turns it off)",
		"spec.to[0].default.http.backOff.maxInterval: must not be shorter than baseInterval",
		"spec.to[0].default.http.rateLimitedBackOff.maxInterval: must be greater than zero",
		"spec.to[0].default.http.rateLimitedBackOff.resetHeaders: must list at least one header",
		`spec.to[0].default.http.retryOn[2]: unknown condition "600": use 5xx, GatewayError, Reset, Retriable4xx, ConnectFailure, EnvoyRatelimited, RefusedStream, Http3PostConnectFailure, HttpMethod<Method> or a status code such as "503"`,
		`spec.to[0].default.http.retryOn[3]: unknown condition "0503": use 5xx, GatewayError, Reset, Retriable4xx, ConnectFailure, EnvoyRatelimited, RefusedStream, Http3PostConnectFailure, HttpMethod<Method> or a status code such as "503"`,
		`spec.to[0].default.http.retryOn[4]: unknown condition "Timeout": use 5xx, GatewayError, Reset, Retriable4xx, ConnectFailure, EnvoyRatelimited, RefusedStream, Http3PostConnectFailure, HttpMethod<Method> or a status code such as "503"`,
		`spec.to[0].default.http.retriableRequestHeaders[0].type: must be one of Exact, Present, RegularExpression, Absent, Prefix, got "Suffix"`,
		`spec.to[0].default.http.retriableRequestHeaders[1].name: must be an HTTP header name (1-256 token characters), got "bad header"`,
		"spec.to[0].default.http.retriableRequestHeaders[1].value: must not be set with type Present",
		"spec.to[0].default.http.retriableRequestHeaders[2].value: must be an RE2 regular expression: error parsing regexp: missing closing ): `a(`",
		"spec.to[0].default.http.hostSelection[0].updateFrequency: must be greater than zero",
		"spec.to[0].default.http.hostSelection[1].predicate: OmitPreviousPriorities must be listed once",
		"spec.to[0].default.http.hostSelection[2].predicate: not supported by ecsmesh: ecsmesh endpoints carry no tag metadata",
		"spec.to[0].default.http.hostSelectionMaxAttempts: must not be negative",
		"spec.to[0].default.grpc.backOff: must set baseInterval, maxInterval or both",
		`spec.to[0].default.grpc.retryOn[1]: unknown condition "NotFound": use Canceled, DeadlineExceeded, Internal, ResourceExhausted or Unavailable`,
	}},
	{"MeshRetry: to is required, from does not exist", head("MeshRetry") + `
  from:
  - targetRef: {kind: Mesh}
    default: {tcp: {maxConnectAttempt: 1}}`, []string{
		"spec.from: unknown field; check its spelling against docs/policies.md",
		"spec.to: must have at least one entry",
	}},

	// MeshCircuitBreaker.
	{"MeshCircuitBreaker: limits, percentages, detectors", head("MeshCircuitBreaker") + `
  to:
  - targetRef: {kind: Mesh}
    default:
      connectionLimits: {maxConnections: 0, maxRequests: 5}
      outlierDetection:
        baseEjectionTime: 0s
        maxEjectionPercent: 101
        healthyPanicThreshold: "100.5"
        detectors:
          gatewayFailures: {consecutive: 0}
          successRate: {standardDeviationFactor: "0", minimumHosts: 0}
          failurePercentage: {threshold: 150}
  - targetRef: {kind: Mesh}
    default: {outlierDetection: {disabled: true}}
  - targetRef: {kind: Mesh}
    default: {outlierDetection: {detectors: {}}}
  - targetRef: {kind: Mesh}
    default: {}`, []string{
		"spec.to[0].default.connectionLimits.maxConnections: must be greater than zero",
		"spec.to[0].default.outlierDetection.baseEjectionTime: must be greater than zero",
		"spec.to[0].default.outlierDetection.maxEjectionPercent: must be a percentage from 0 to 100",
		"spec.to[0].default.outlierDetection.healthyPanicThreshold: must be a percentage from 0 to 100",
		"spec.to[0].default.outlierDetection.detectors.gatewayFailures.consecutive: must be greater than zero",
		"spec.to[0].default.outlierDetection.detectors.successRate.minimumHosts: must be greater than zero",
		"spec.to[0].default.outlierDetection.detectors.successRate.standardDeviationFactor: must be greater than zero",
		"spec.to[0].default.outlierDetection.detectors.failurePercentage.threshold: must be a percentage from 0 to 100",
		"spec.to[1].default.outlierDetection.detectors: must be set",
		"spec.to[2].default.outlierDetection.detectors: must set at least one of totalFailures, gatewayFailures, localOriginFailures, successRate or failurePercentage",
		"spec.to[3].default: must set connectionLimits, outlierDetection or both",
	}},

	// MeshHealthCheck.
	{"MeshHealthCheck: thresholds, statuses, path, base64, event logs", head("MeshHealthCheck") + `
  to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      interval: 0s
      unhealthyThreshold: 0
      intervalJitterPercent: 200
      eventLogPath: /tmp/hc.log
      http: {path: health, expectedStatuses: [200, 99, 600], requestHeadersToAdd: {set: [{name: x, value: "a\nb"}], add: [{name: X, value: c}]}}
      tcp: {send: "not base64!"}
  - targetRef: {kind: MeshService, name: backend}
    default: {interval: 1s}`, []string{
		"spec.to[0].default.eventLogPath: not supported by ecsmesh: health-check event logs are not supported; failures show in Envoy's stats",
		"spec.to[0].default.interval: must be greater than zero",
		"spec.to[0].default.unhealthyThreshold: must be greater than zero",
		"spec.to[0].default.intervalJitterPercent: must be a percentage from 0 to 100",
		"spec.to[0].default.http.path: must be an absolute path starting with '/'",
		"spec.to[0].default.http.requestHeadersToAdd.set[0].value: must not contain CR, LF or NUL",
		`spec.to[0].default.http.requestHeadersToAdd.add[0].name: header "X" is already in set: one action per header`,
		"spec.to[0].default.http.expectedStatuses[1]: must be an HTTP status code from 100 to 599, got 99",
		"spec.to[0].default.http.expectedStatuses[2]: must be an HTTP status code from 100 to 599, got 600",
		"spec.to[0].default.tcp.send: must be base64: illegal base64 data at input byte 3",
		"spec.to[1].default: must set at least one of http, tcp or grpc",
	}},

	// MeshHTTPRoute.
	{"MeshHTTPRoute: matches", head("MeshHTTPRoute") + `
  to:
  - targetRef: {kind: MeshService, name: backend}
    hostnames: [example.com]
    rules:
    - matches: []
      default: {}
    - matches:
      - path: {type: Exact, value: orders}
      - path: {type: PathPrefix, value: /api/}
      - path: {type: Prefix, value: /}
      - path: {type: RegularExpression, value: "[a-"}
        method: FETCH
        queryParams: [{type: Exact, name: a, value: "1"}, {type: Exact, name: a, value: "2"}, {type: Glob, name: "", value: x}]
      default: {}
  - targetRef: {kind: Mesh}
    rules: []`, []string{
		"spec.to[0].hostnames: not supported by ecsmesh: hostnames apply to gateways; ecsmesh runs sidecars only",
		"spec.to[0].rules[0].matches: must have at least one match",
		`spec.to[0].rules[1].matches[0].path.value: must be an absolute path starting with '/', got "orders"`,
		"spec.to[0].rules[1].matches[1].path.value: must not end with '/': a prefix matches whole path segments",
		"spec.to[0].rules[1].matches[2].path.type: Prefix was renamed PathPrefix in Kuma 2.3; use PathPrefix",
		"spec.to[0].rules[1].matches[3].path.value: must be an RE2 regular expression: error parsing regexp: missing closing ]: `[a-`",
		`spec.to[0].rules[1].matches[3].method: must be one of CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE, got "FETCH"`,
		`spec.to[0].rules[1].matches[3].queryParams[1].name: "a" is matched twice`,
		"spec.to[0].rules[1].matches[3].queryParams[2].name: must be set",
		`spec.to[0].rules[1].matches[3].queryParams[2].type: must be Exact or RegularExpression, got "Glob"`,
		`spec.to[1].targetRef.kind: must be one of MeshService here, got "Mesh"`,
		"spec.to[1].rules: must have at least one rule",
	}},
	{"MeshHTTPRoute: filters and backends", head("MeshHTTPRoute") + `
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{path: {type: Exact, value: /a}}]
      default:
        filters:
        - type: RequestHeaderModifier
        - type: ResponseHeaderModifier
          responseHeaderModifier: {}
          urlRewrite: {hostname: x}
        - type: RequestRedirect
          requestRedirect: {scheme: ftp, hostname: 10.0.0.1, port: 0, statusCode: 200, path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}
        - type: URLRewrite
          urlRewrite: {hostname: Bad_Host, hostToBackendHostname: true, path: {type: ReplaceFullPath}}
        - type: RequestMirror
          requestMirror: {percentage: 101, backendRef: {kind: MeshService, name: shadow, weight: 5}}
        - type: Teleport
        backendRefs:
        - {kind: MeshService, name: backend, tags: {version: v1}, weight: 0}
        - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 0}
        - {kind: MeshExternalService, name: httpbin}
        - {name: x}`, []string{
		"spec.to[0].rules[0].default.filters[3].urlRewrite.hostToBackendHostname: not supported by ecsmesh: hostToBackendHostname applies to gateways; ecsmesh runs sidecars only",
		"spec.to[0].rules[0].default.filters[0].requestHeaderModifier: must be set with type RequestHeaderModifier",
		"spec.to[0].rules[0].default.filters[1].urlRewrite: must not be set with type ResponseHeaderModifier",
		"spec.to[0].rules[0].default.filters[1].responseHeaderModifier: must have at least one of set, add or remove",
		`spec.to[0].rules[0].default.filters[2].requestRedirect.scheme: must be http or https, got "ftp"`,
		"spec.to[0].rules[0].default.filters[2].requestRedirect.hostname: must be a host name, not an IP address",
		"spec.to[0].rules[0].default.filters[2].requestRedirect.path.replacePrefixMatch: can only be used when every match of the rule matches a PathPrefix",
		"spec.to[0].rules[0].default.filters[2].requestRedirect.port: must be in 1..65535",
		"spec.to[0].rules[0].default.filters[2].requestRedirect.statusCode: must be 301, 302, 303, 307 or 308, got 200",
		`spec.to[0].rules[0].default.filters[3].urlRewrite.hostname: must be a lower-case DNS name, got "Bad_Host"`,
		"spec.to[0].rules[0].default.filters[3].urlRewrite.path.replaceFullPath: must be set with type ReplaceFullPath",
		"spec.to[0].rules[0].default.filters[4].requestMirror.percentage: must be a percentage from 0 to 100",
		"spec.to[0].rules[0].default.filters[4].requestMirror.backendRef.weight: must not be set: a mirror receives copies, not a share",
		`spec.to[0].rules[0].default.filters[5].type: must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror, got "Teleport"`,
		"spec.to[0].rules[0].default.backendRefs[0].tags: must not be set with kind MeshService; use MeshServiceSubset",
		"spec.to[0].rules[0].default.backendRefs[2].kind: MeshExternalService is not supported by ecsmesh: ecsmesh has no MeshExternalService resources",
		"spec.to[0].rules[0].default.backendRefs[3].kind: must be set to MeshService or MeshServiceSubset",
	}},
	{"MeshHTTPRoute: duplicate header actions", head("MeshHTTPRoute") + `
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{}]
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-a, value: "1"}], remove: [X-A, ""]}`, []string{
		`spec.to[0].rules[0].default.filters[0].requestHeaderModifier.remove[0]: header "X-A" is already in set: one action per header`,
		`spec.to[0].rules[0].default.filters[0].requestHeaderModifier.remove[1]: must be an HTTP header name (1-256 token characters), got ""`,
	}},

	// MeshTCPRoute.
	{"MeshTCPRoute: rules and weights", head("MeshTCPRoute") + `
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - default: {backendRefs: []}
    - default: {backendRefs: [{kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 0}]}`, []string{
		"spec.to[0].rules: must have at most one rule: a TCP route has no matches",
		"spec.to[0].rules[0].default.backendRefs: must list at least one backend",
		"spec.to[0].rules[1].default.backendRefs: at least one backend must have a weight above zero",
	}},

	// MeshRateLimit.
	{"MeshRateLimit: rates, status, to", head("MeshRateLimit") + `
  to:
  - targetRef: {kind: Mesh}
    default: {local: {http: {disabled: true}}}
  from:
  - targetRef: {kind: Mesh}
    default: {local: {http: {requestRate: {num: 0, interval: 10ms}, onRateLimit: {status: 42}}, tcp: {}}}
  - targetRef: {kind: Mesh}
    default: {local: {}}
  - targetRef: {kind: Mesh}
    default: {}`, []string{
		"spec.to: not supported by ecsmesh: to applies rate limits on gateways; ecsmesh runs sidecars only, use from or rules to limit a service's inbound traffic",
		"spec.from[0].default.local.http.requestRate.num: must be greater than zero",
		"spec.from[0].default.local.http.requestRate.interval: must be at least 50ms",
		"spec.from[0].default.local.http.onRateLimit.status: must be an HTTP status code from 100 to 599, got 42",
		"spec.from[0].default.local.tcp: must set disabled, connectionRate or both",
		"spec.from[1].default.local: must set http, tcp or both",
		"spec.from[2].default.local: must be set",
	}},

	// MeshFaultInjection.
	{"MeshFaultInjection: statuses, percentages, bandwidth", head("MeshFaultInjection") + `
  from:
  - targetRef: {kind: MeshService, name: frontend}
    default:
      http:
      - abort: {httpStatus: 700, percentage: "-1"}
      - delay: {value: -5s, percentage: 50}
      - responseBandwidth: {limit: 50MBps, percentage: 10}
      - abort: {httpStatus: 503}
      - {}
  - targetRef: {kind: Dataplane, name: web-1}
    default: {http: []}`, []string{
		"spec.from[0].default.http[0].abort.httpStatus: must be an HTTP status code from 100 to 599, got 700",
		"spec.from[0].default.http[0].abort.percentage: must be a percentage from 0 to 100",
		"spec.from[0].default.http[1].delay.value: must not be negative (0 turns it off)",
		`spec.from[0].default.http[2].responseBandwidth.limit: must be a bandwidth such as 10kbps, 50Mbps or 1Gbps, got "50MBps"`,
		"spec.from[0].default.http[3].abort.percentage: must be set to a percentage from 0 to 100",
		"spec.from[0].default.http[4]: must set at least one of abort, delay or responseBandwidth",
		`spec.from[1].targetRef.kind: must be one of Mesh, MeshSubset, MeshService, MeshServiceSubset here, got "Dataplane"`,
	}},
}

func TestPolicyInvalid(t *testing.T) {
	for _, tt := range slices.Concat(invalidPolicies, invalidPermissions) {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatal("decoded, want violations")
			}
			var ferr *FileError
			if !errors.As(err, &ferr) {
				t.Fatalf("error %T: %v", err, err)
			}
			var got []string
			if len(ferr.Documents) == 1 && ferr.Documents[0].Index == 0 && !strings.Contains(tt.in, "\n---\n") {
				for _, v := range ferr.Documents[0].Err.Violations {
					got = append(got, v.Field+": "+v.Message)
				}
			} else {
				for _, v := range ferr.Violations() {
					got = append(got, v.Field+": "+v.Message)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestPolicyValidateAlone checks Validate on objects built in Go (not
// decoded), as the manager calls it on every applied object.
func TestPolicyValidateAlone(t *testing.T) {
	mt := &MeshTimeout{Meta: Meta{Type: KindMeshTimeout, Mesh: "default", Name: "t"}}
	if v := mt.Validate(); v.Empty() {
		t.Error("an empty MeshTimeout validates")
	}
	five := Duration{5e9}
	mt.Spec.To = []PolicyItem[MeshTimeoutConf]{{TargetRef: PolicyTargetRef{Kind: TargetMesh}, Default: MeshTimeoutConf{IdleTimeout: &five}}}
	if v := mt.Validate(); !v.Empty() {
		t.Errorf("valid MeshTimeout: %v", v)
	}
	if ref := mt.TopTargetRef(); ref.Kind != TargetMesh {
		t.Errorf("default top-level targetRef %+v, want Mesh", ref)
	}
}
