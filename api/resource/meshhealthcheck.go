package resource

import (
	"encoding/base64"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// MeshHealthCheck actively checks the endpoints of destinations over HTTP,
// TCP or gRPC (Kuma's schema).
type MeshHealthCheck struct {
	Meta
	Spec MeshHealthCheckSpec `json:"spec"`
}

// MeshHealthCheckSpec is the body of a MeshHealthCheck.
type MeshHealthCheckSpec struct {
	// TargetRef selects the Dataplanes configured; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// To configures the checks of destinations (Mesh or MeshService).
	To []PolicyItem[MeshHealthCheckConf] `json:"to,omitempty"`
}

// MeshHealthCheckConf is the health-check configuration.
type MeshHealthCheckConf struct {
	_ unsupported `refused:"eventLogPath" why:"health-check event logs are not supported; failures show in Envoy's stats"`
	_ unsupported `refused:"alwaysLogHealthCheckFailures" why:"health-check event logs are not supported; failures show in Envoy's stats"`
	// Interval between checks (default 1m).
	Interval *Duration `json:"interval,omitempty"`
	// Timeout of one check (default 15s).
	Timeout *Duration `json:"timeout,omitempty"`
	// UnhealthyThreshold failed checks in a row make an endpoint unhealthy
	// (default 5).
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`
	// HealthyThreshold passed checks in a row make it healthy (default 1).
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`
	// InitialJitter delays the first check by up to this long.
	InitialJitter *Duration `json:"initialJitter,omitempty"`
	// IntervalJitter is added to each interval.
	IntervalJitter *Duration `json:"intervalJitter,omitempty"`
	// IntervalJitterPercent of the interval is added to each interval.
	IntervalJitterPercent *int32 `json:"intervalJitterPercent,omitempty"`
	// HealthyPanicThreshold (deprecated by Kuma in favour of
	// MeshCircuitBreaker's) is the healthy percentage under which every
	// endpoint takes traffic again.
	HealthyPanicThreshold *Number `json:"healthyPanicThreshold,omitempty"`
	// FailTrafficOnPanic fails requests instead when in panic.
	FailTrafficOnPanic *bool `json:"failTrafficOnPanic,omitempty"`
	// NoTrafficInterval is the interval while the destination has had no
	// traffic (default 60s).
	NoTrafficInterval *Duration        `json:"noTrafficInterval,omitempty"`
	TCP               *HealthCheckTCP  `json:"tcp,omitempty"`
	HTTP              *HealthCheckHTTP `json:"http,omitempty"`
	GRPC              *HealthCheckGRPC `json:"grpc,omitempty"`
	// ReuseConnection between checks (default true).
	ReuseConnection *bool `json:"reuseConnection,omitempty"`
}

// HealthCheckTCP connects, optionally sends bytes and expects bytes back.
type HealthCheckTCP struct {
	Disabled *bool `json:"disabled,omitempty"`
	// Send is base64 of what to send.
	Send *string `json:"send,omitempty"`
	// Receive lists base64 blocks expected, in order.
	Receive []string `json:"receive,omitzero"`
}

// HealthCheckHTTP requests a path and expects one of the statuses.
type HealthCheckHTTP struct {
	Disabled *bool `json:"disabled,omitempty"`
	// Path requested (default "/").
	Path *string `json:"path,omitempty"`
	// RequestHeadersToAdd to every check request.
	RequestHeadersToAdd *HeaderAdditions `json:"requestHeadersToAdd,omitempty"`
	// ExpectedStatuses are the healthy statuses (default 200).
	ExpectedStatuses []int32 `json:"expectedStatuses,omitzero"`
}

// HealthCheckGRPC uses the gRPC health-checking protocol.
type HealthCheckGRPC struct {
	Disabled    *bool   `json:"disabled,omitempty"`
	ServiceName *string `json:"serviceName,omitempty"`
	Authority   *string `json:"authority,omitempty"`
}

// TopTargetRef implements Policy.
func (p *MeshHealthCheck) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy.
func (p *MeshHealthCheck) Entries() (to, from []PolicyEntry) {
	return itemEntries("to", p.Spec.To), nil
}

// Validate implements Object.
func (p *MeshHealthCheck) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	if len(p.Spec.To) == 0 {
		verr.Add(sp.Field("to"), "must have at least one entry")
	}
	validateItems(sp.Field("to"), p.Spec.To, []string{TargetMesh, TargetMeshService}, p.Mesh, validateHealthCheckConf, verr)
	return verr
}

func validateHealthCheckConf(p validation.Path, c *MeshHealthCheckConf, verr *validation.Error) {
	validateDurationPositive(p.Field("interval"), c.Interval, verr)
	validateDurationPositive(p.Field("timeout"), c.Timeout, verr)
	validatePositive(p.Field("unhealthyThreshold"), c.UnhealthyThreshold, verr)
	validatePositive(p.Field("healthyThreshold"), c.HealthyThreshold, verr)
	validateDurationPositive(p.Field("initialJitter"), c.InitialJitter, verr)
	validateDurationPositive(p.Field("intervalJitter"), c.IntervalJitter, verr)
	validatePercent(p.Field("intervalJitterPercent"), c.IntervalJitterPercent, verr)
	validateNumberPercent(p.Field("healthyPanicThreshold"), c.HealthyPanicThreshold, verr)
	validateDurationPositive(p.Field("noTrafficInterval"), c.NoTrafficInterval, verr)
	if c.HTTP == nil && c.TCP == nil && c.GRPC == nil {
		verr.Add(p, "must set at least one of http, tcp or grpc")
	}
	if h := c.HTTP; h != nil {
		hp := p.Field("http")
		if h.Path != nil && !strings.HasPrefix(*h.Path, "/") {
			verr.Add(hp.Field("path"), "must be an absolute path starting with '/'")
		}
		if h.RequestHeadersToAdd != nil {
			validateHeaderAdditions(hp.Field("requestHeadersToAdd"), h.RequestHeadersToAdd, verr)
		}
		for i, s := range h.ExpectedStatuses {
			validateStatus(hp.Field("expectedStatuses").Index(i), int64(s), verr)
		}
	}
	if t := c.TCP; t != nil {
		tp := p.Field("tcp")
		if t.Send != nil {
			validateBase64(tp.Field("send"), *t.Send, verr)
		}
		for i, r := range t.Receive {
			validateBase64(tp.Field("receive").Index(i), r, verr)
		}
	}
}

func validateBase64(p validation.Path, s string, verr *validation.Error) {
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		verr.Add(p, "must be base64: "+err.Error())
	}
}
