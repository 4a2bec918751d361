package resource

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// Access log backend and format types (Kuma's).
const (
	AccessLogFile          = "File"
	AccessLogTCP           = "Tcp"
	AccessLogOpenTelemetry = "OpenTelemetry"
	AccessLogFormatPlain   = "Plain"
	AccessLogFormatJSON    = "Json"
)

// MeshAccessLog writes a line per request (HTTP) or connection (TCP) that
// a sidecar handles, outbound (to) or inbound (from, rules), to files or
// an OpenTelemetry collector (Kuma's schema).
type MeshAccessLog struct {
	Meta
	Spec MeshAccessLogSpec `json:"spec"`
}

// MeshAccessLogSpec is the body of a MeshAccessLog.
type MeshAccessLogSpec struct {
	// TargetRef selects the Dataplanes (or inbounds); Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// To configures the logs of calls to destinations.
	To []PolicyItem[MeshAccessLogConf] `json:"to,omitempty"`
	// From configures the logs of inbound traffic (Mesh callers).
	From []PolicyItem[MeshAccessLogConf] `json:"from,omitempty"`
	// Rules configures the logs of inbound traffic (Kuma 2.10's form).
	Rules []PolicyRule[MeshAccessLogConf] `json:"rules,omitempty"`
}

// MeshAccessLogConf lists where to log. A merged list replaces: the most
// specific policy's backends win.
type MeshAccessLogConf struct {
	Backends []AccessLogBackend `json:"backends,omitzero"`
}

// AccessLogBackend is one destination of log lines.
type AccessLogBackend struct {
	// Type is File, Tcp or OpenTelemetry.
	Type          string                `json:"type"`
	File          *AccessLogFileBackend `json:"file,omitempty"`
	TCP           *AccessLogTCPBackend  `json:"tcp,omitempty"`
	OpenTelemetry *AccessLogOTelBackend `json:"openTelemetry,omitempty"`
}

// AccessLogFileBackend writes to a file of the sidecar's container
// (/dev/stdout reaches CloudWatch Logs through the awslogs driver).
type AccessLogFileBackend struct {
	Path   string           `json:"path"`
	Format *AccessLogFormat `json:"format,omitempty"`
}

// AccessLogTCPBackend sends lines to a TCP address.
type AccessLogTCPBackend struct {
	Address string           `json:"address"`
	Format  *AccessLogFormat `json:"format,omitempty"`
}

// AccessLogOTelBackend exports log records to an OpenTelemetry collector
// over OTLP/gRPC.
type AccessLogOTelBackend struct {
	// Endpoint is the collector's host:port.
	Endpoint string `json:"endpoint"`
	// Body is the record's body, an OpenTelemetry AnyValue in JSON.
	Body any `json:"body,omitempty"`
	// Attributes are the record's attributes.
	Attributes []AccessLogJSONField `json:"attributes,omitzero"`
}

// AccessLogFormat is a plain line or a JSON object.
type AccessLogFormat struct {
	// Type is Plain or Json.
	Type string `json:"type"`
	// Plain is the line, with Envoy's command operators and Kuma's
	// placeholders.
	Plain string `json:"plain,omitempty"`
	// JSON is the object's fields, in order.
	JSON []AccessLogJSONField `json:"json,omitzero"`
	// OmitEmptyValues leaves out fields whose value is empty.
	OmitEmptyValues *bool `json:"omitEmptyValues,omitempty"`
}

// AccessLogJSONField is one key and its (formatted) value.
type AccessLogJSONField struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// TopTargetRef implements Policy.
func (p *MeshAccessLog) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy.
func (p *MeshAccessLog) Entries() (to, from []PolicyEntry) {
	return itemEntries("to", p.Spec.To), append(itemEntries("from", p.Spec.From), ruleEntries(p.Spec.Rules)...)
}

// Validate implements Object.
func (p *MeshAccessLog) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	validateInboundSpec(sp, len(p.Spec.To), len(p.Spec.From), len(p.Spec.Rules), verr)
	validateItems(sp.Field("to"), p.Spec.To, []string{TargetMesh, TargetMeshService}, p.Mesh, validateAccessLogConf, verr)
	validateItems(sp.Field("from"), p.Spec.From, []string{TargetMesh}, p.Mesh, validateAccessLogConf, verr)
	validateRules(sp.Field("rules"), p.Spec.Rules, validateAccessLogConf, verr)
	return verr
}

func validateAccessLogConf(p validation.Path, c *MeshAccessLogConf, verr *validation.Error) {
	if c.Backends == nil {
		verr.Add(p.Field("backends"), "must be set (an empty list turns logging off)")
	}
	for i, b := range c.Backends {
		bp := p.Field("backends").Index(i)
		set := 0
		for _, v := range []bool{b.File != nil, b.TCP != nil, b.OpenTelemetry != nil} {
			if v {
				set++
			}
		}
		if set > 1 {
			verr.Add(bp, "must set only the field its type names")
		}
		switch b.Type {
		case AccessLogFile:
			if b.File == nil {
				verr.Add(bp.Field("file"), "must be set with type File")
				continue
			}
			fp := bp.Field("file")
			if !strings.HasPrefix(b.File.Path, "/") {
				verr.Add(fp.Field("path"), "must be an absolute path (e.g. /dev/stdout)")
			}
			validateAccessLogFormat(fp.Field("format"), b.File.Format, verr)
		case AccessLogTCP:
			verr.Add(bp.Field("type"), "Tcp is not supported by ecsmesh yet: write to a File (/dev/stdout reaches CloudWatch Logs through the awslogs log driver) or export to OpenTelemetry")
		case AccessLogOpenTelemetry:
			if b.OpenTelemetry == nil {
				verr.Add(bp.Field("openTelemetry"), "must be set with type OpenTelemetry")
				continue
			}
			op := bp.Field("openTelemetry")
			if err := validateHostPort(b.OpenTelemetry.Endpoint); err != "" {
				verr.Add(op.Field("endpoint"), err)
			}
			if b.OpenTelemetry.Body != nil {
				validateOTelValue(op.Field("body"), b.OpenTelemetry.Body, verr)
			}
			for j, a := range b.OpenTelemetry.Attributes {
				if a.Key == "" {
					verr.Add(op.Field("attributes").Index(j).Field("key"), "must not be empty")
				}
			}
		default:
			verr.Add(bp.Field("type"), fmt.Sprintf("must be File, Tcp or OpenTelemetry, got %q", b.Type))
		}
	}
}

func validateAccessLogFormat(p validation.Path, f *AccessLogFormat, verr *validation.Error) {
	if f == nil {
		return
	}
	switch f.Type {
	case AccessLogFormatPlain:
		if f.Plain == "" {
			verr.Add(p.Field("plain"), "must be set with type Plain")
		}
		if f.JSON != nil {
			verr.Add(p.Field("json"), "must not be set with type Plain")
		}
	case AccessLogFormatJSON:
		if len(f.JSON) == 0 {
			verr.Add(p.Field("json"), "must list at least one field with type Json")
		}
		if f.Plain != "" {
			verr.Add(p.Field("plain"), "must not be set with type Json")
		}
		seen := map[string]int{}
		for i, kv := range f.JSON {
			kp := p.Field("json").Index(i).Field("key")
			if kv.Key == "" {
				verr.Add(kp, "must not be empty")
			} else if prev, dup := seen[kv.Key]; dup {
				verr.Add(kp, fmt.Sprintf("duplicates json[%d]", prev))
			}
			seen[kv.Key] = i
		}
	default:
		verr.Add(p.Field("type"), fmt.Sprintf("must be Plain or Json, got %q", f.Type))
	}
}

// validateHostPort checks host:port, returning what is wrong or "".
func validateHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Sprintf("must be host:port, got %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port must be 1-65535, got %q", port)
	}
	return ""
}

// validateOTelValue checks v is an OpenTelemetry AnyValue in its JSON
// form: an object with exactly one of stringValue, boolValue, intValue,
// doubleValue, bytesValue, arrayValue {values} or kvlistValue {values:
// [{key, value}]}.
func validateOTelValue(p validation.Path, v any, verr *validation.Error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		verr.Add(p, "must be an OpenTelemetry AnyValue: an object with exactly one of stringValue, boolValue, intValue, doubleValue, bytesValue, arrayValue or kvlistValue")
		return
	}
	for k, x := range m {
		kp := p.Field(k)
		switch k {
		case "stringValue", "bytesValue":
			if _, ok := x.(string); !ok {
				verr.Add(kp, "must be a string")
			}
		case "boolValue":
			if _, ok := x.(bool); !ok {
				verr.Add(kp, "must be true or false")
			}
		case "intValue", "doubleValue":
			switch x.(type) {
			case float64, string, int, int64:
			default:
				verr.Add(kp, "must be a number")
			}
		case "arrayValue", "kvlistValue":
			obj, ok := x.(map[string]any)
			vals, ok2 := obj["values"].([]any)
			if !ok || !ok2 || len(obj) != 1 {
				verr.Add(kp, "must be an object with a values list")
				continue
			}
			for i, e := range vals {
				ep := kp.Field("values").Index(i)
				if k == "arrayValue" {
					validateOTelValue(ep, e, verr)
					continue
				}
				kv, ok := e.(map[string]any)
				key, ok2 := kv["key"].(string)
				if !ok || !ok2 || key == "" || len(kv) != 2 {
					verr.Add(ep, "must be an object with a key and a value")
					continue
				}
				validateOTelValue(ep.Field("value"), kv["value"], verr)
			}
		default:
			verr.Add(kp, "unknown field; an AnyValue has stringValue, boolValue, intValue, doubleValue, bytesValue, arrayValue or kvlistValue")
		}
	}
}
