package resource

import "github.com/ecsmesh/ecsmesh/api/validation"

// MeshCircuitBreaker limits connections and requests to a destination and
// ejects failing endpoints (outlier detection), Kuma's schema.
type MeshCircuitBreaker struct {
	Meta
	Spec MeshCircuitBreakerSpec `json:"spec"`
}

// MeshCircuitBreakerSpec is the body of a MeshCircuitBreaker.
type MeshCircuitBreakerSpec struct {
	// TargetRef selects the Dataplanes (or inbounds) configured; Mesh when
	// absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// To configures traffic to destinations (Mesh or MeshService).
	To []PolicyItem[MeshCircuitBreakerConf] `json:"to,omitempty"`
	// From configures the inbound side (Mesh callers).
	From []PolicyItem[MeshCircuitBreakerConf] `json:"from,omitempty"`
	// Rules configures all inbound traffic (Kuma 2.10's form of from).
	Rules []PolicyRule[MeshCircuitBreakerConf] `json:"rules,omitempty"`
}

// MeshCircuitBreakerConf holds the limits and the outlier detection.
type MeshCircuitBreakerConf struct {
	ConnectionLimits *ConnectionLimits `json:"connectionLimits,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// ConnectionLimits are Envoy's circuit-breaker thresholds.
type ConnectionLimits struct {
	// MaxConnections to all endpoints (Envoy default 1024).
	MaxConnections *uint32 `json:"maxConnections,omitempty"`
	// MaxConnectionPools that may be open at once.
	MaxConnectionPools *uint32 `json:"maxConnectionPools,omitempty"`
	// MaxPendingRequests waiting for a connection (default 1024).
	MaxPendingRequests *uint32 `json:"maxPendingRequests,omitempty"`
	// MaxRetries outstanding at once (default 3).
	MaxRetries *uint32 `json:"maxRetries,omitempty"`
	// MaxRequests outstanding at once (default 1024).
	MaxRequests *uint32 `json:"maxRequests,omitempty"`
}

// OutlierDetection ejects endpoints that fail.
type OutlierDetection struct {
	// Disabled turns outlier detection off.
	Disabled *bool `json:"disabled,omitempty"`
	// Interval between ejection sweeps (Envoy default 10s).
	Interval *Duration `json:"interval,omitempty"`
	// BaseEjectionTime, multiplied by the number of ejections (default 30s).
	BaseEjectionTime *Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent of the endpoints that may be ejected (default 10).
	MaxEjectionPercent *uint32 `json:"maxEjectionPercent,omitempty"`
	// SplitExternalAndLocalErrors tells local-origin failures apart.
	SplitExternalAndLocalErrors *bool `json:"splitExternalAndLocalErrors,omitempty"`
	// Detectors decide what counts as failing.
	Detectors *OutlierDetectors `json:"detectors,omitempty"`
	// HealthyPanicThreshold is the healthy percentage under which every
	// endpoint takes traffic again (default 50).
	HealthyPanicThreshold *Number `json:"healthyPanicThreshold,omitempty"`
}

// OutlierDetectors are the ways an endpoint is found failing.
type OutlierDetectors struct {
	// TotalFailures counts consecutive 5xx responses.
	TotalFailures *ConsecutiveFailures `json:"totalFailures,omitempty"`
	// GatewayFailures counts consecutive 502, 503 and 504 responses.
	GatewayFailures *ConsecutiveFailures `json:"gatewayFailures,omitempty"`
	// LocalOriginFailures counts consecutive connection failures.
	LocalOriginFailures *ConsecutiveFailures `json:"localOriginFailures,omitempty"`
	// SuccessRate ejects endpoints far below the others' success rate.
	SuccessRate *SuccessRateDetector `json:"successRate,omitempty"`
	// FailurePercentage ejects endpoints above a failure percentage.
	FailurePercentage *FailurePercentageDetector `json:"failurePercentage,omitempty"`
}

// ConsecutiveFailures ejects after this many failures in a row.
type ConsecutiveFailures struct {
	Consecutive *uint32 `json:"consecutive,omitempty"`
}

// SuccessRateDetector compares each endpoint's success rate with the mean.
type SuccessRateDetector struct {
	MinimumHosts  *uint32 `json:"minimumHosts,omitempty"`
	RequestVolume *uint32 `json:"requestVolume,omitempty"`
	// StandardDeviationFactor: ejected below mean - factor × stdev
	// (default 1.9).
	StandardDeviationFactor *Number `json:"standardDeviationFactor,omitempty"`
}

// FailurePercentageDetector ejects endpoints failing more than Threshold
// percent of requests.
type FailurePercentageDetector struct {
	MinimumHosts  *uint32 `json:"minimumHosts,omitempty"`
	RequestVolume *uint32 `json:"requestVolume,omitempty"`
	Threshold     *uint32 `json:"threshold,omitempty"`
}

// TopTargetRef implements Policy.
func (p *MeshCircuitBreaker) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy.
func (p *MeshCircuitBreaker) Entries() (to, from []PolicyEntry) {
	return itemEntries("to", p.Spec.To), append(itemEntries("from", p.Spec.From), ruleEntries(p.Spec.Rules)...)
}

// Validate implements Object.
func (p *MeshCircuitBreaker) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	validateInboundSpec(sp, len(p.Spec.To), len(p.Spec.From), len(p.Spec.Rules), verr)
	validateItems(sp.Field("to"), p.Spec.To, []string{TargetMesh, TargetMeshService}, p.Mesh, validateCircuitBreakerConf, verr)
	validateItems(sp.Field("from"), p.Spec.From, []string{TargetMesh}, p.Mesh, validateCircuitBreakerConf, verr)
	validateRules(sp.Field("rules"), p.Spec.Rules, validateCircuitBreakerConf, verr)
	return verr
}

func validateCircuitBreakerConf(p validation.Path, c *MeshCircuitBreakerConf, verr *validation.Error) {
	if c.ConnectionLimits == nil && c.OutlierDetection == nil {
		verr.Add(p, "must set connectionLimits, outlierDetection or both")
		return
	}
	if l := c.ConnectionLimits; l != nil {
		lp := p.Field("connectionLimits")
		validatePositive(lp.Field("maxConnections"), l.MaxConnections, verr)
		validatePositive(lp.Field("maxConnectionPools"), l.MaxConnectionPools, verr)
		validatePositive(lp.Field("maxPendingRequests"), l.MaxPendingRequests, verr)
		validatePositive(lp.Field("maxRetries"), l.MaxRetries, verr)
		validatePositive(lp.Field("maxRequests"), l.MaxRequests, verr)
	}
	o := c.OutlierDetection
	if o == nil {
		return
	}
	op := p.Field("outlierDetection")
	validateDurationPositive(op.Field("interval"), o.Interval, verr)
	validateDurationPositive(op.Field("baseEjectionTime"), o.BaseEjectionTime, verr)
	validatePercent(op.Field("maxEjectionPercent"), o.MaxEjectionPercent, verr)
	validateNumberPercent(op.Field("healthyPanicThreshold"), o.HealthyPanicThreshold, verr)
	d := o.Detectors
	dp := op.Field("detectors")
	if d == nil {
		verr.Add(dp, "must be set")
		return
	}
	if d.TotalFailures == nil && d.GatewayFailures == nil && d.LocalOriginFailures == nil && d.SuccessRate == nil && d.FailurePercentage == nil {
		verr.Add(dp, "must set at least one of totalFailures, gatewayFailures, localOriginFailures, successRate or failurePercentage")
		return
	}
	for _, f := range []struct {
		name string
		f    *ConsecutiveFailures
	}{{"totalFailures", d.TotalFailures}, {"gatewayFailures", d.GatewayFailures}, {"localOriginFailures", d.LocalOriginFailures}} {
		if f.f != nil {
			validatePositive(dp.Field(f.name).Field("consecutive"), f.f.Consecutive, verr)
		}
	}
	if s := d.SuccessRate; s != nil {
		sp := dp.Field("successRate")
		validatePositive(sp.Field("minimumHosts"), s.MinimumHosts, verr)
		validatePositive(sp.Field("requestVolume"), s.RequestVolume, verr)
		if s.StandardDeviationFactor != nil && s.StandardDeviationFactor.Float64() <= 0 {
			verr.Add(sp.Field("standardDeviationFactor"), "must be greater than zero")
		}
	}
	if f := d.FailurePercentage; f != nil {
		fp := dp.Field("failurePercentage")
		validatePositive(fp.Field("minimumHosts"), f.MinimumHosts, verr)
		validatePositive(fp.Field("requestVolume"), f.RequestVolume, verr)
		validatePercent(fp.Field("threshold"), f.Threshold, verr)
	}
}
