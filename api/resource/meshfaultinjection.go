package resource

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// MeshFaultInjection injects HTTP faults into a service's inbound traffic:
// aborts with a status, delays, and response bandwidth limits, each for a
// percentage of requests (Kuma's schema).
type MeshFaultInjection struct {
	Meta
	Spec MeshFaultInjectionSpec `json:"spec"`
}

// MeshFaultInjectionSpec is the body of a MeshFaultInjection.
type MeshFaultInjectionSpec struct {
	_ unsupported `refused:"to" why:"to injects faults on gateways; ecsmesh runs sidecars only, use from to inject into a service's inbound traffic"`
	// TargetRef selects the inbounds; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// From configures the faults per caller (Mesh, MeshSubset,
	// MeshService, MeshServiceSubset).
	From []PolicyItem[MeshFaultInjectionConf] `json:"from,omitempty"`
}

// MeshFaultInjectionConf lists the HTTP faults.
type MeshFaultInjectionConf struct {
	// HTTP faults; the list replaces a less specific policy's.
	HTTP []HTTPFault `json:"http,omitzero"`
}

// HTTPFault is one fault: an abort, a delay, a bandwidth limit or several.
type HTTPFault struct {
	Abort             *FaultAbort             `json:"abort,omitempty"`
	Delay             *FaultDelay             `json:"delay,omitempty"`
	ResponseBandwidth *FaultResponseBandwidth `json:"responseBandwidth,omitempty"`
}

// FaultAbort answers Percentage of requests with HTTPStatus.
type FaultAbort struct {
	HTTPStatus int32  `json:"httpStatus"`
	Percentage Number `json:"percentage"`
}

// FaultDelay delays Percentage of requests by Value.
type FaultDelay struct {
	Value      Duration `json:"value"`
	Percentage Number   `json:"percentage"`
}

// FaultResponseBandwidth limits the response speed of Percentage of
// requests to Limit ("50Mbps", "10kbps", "1Gbps").
type FaultResponseBandwidth struct {
	Limit      string `json:"limit"`
	Percentage Number `json:"percentage"`
}

var bandwidthRE = regexp.MustCompile(`^([0-9]+)\s?(kbps|Mbps|Gbps)$`)

// BandwidthKbps returns the limit in kilobits per second.
func (b FaultResponseBandwidth) BandwidthKbps() (uint64, error) {
	m := bandwidthRE.FindStringSubmatch(b.Limit)
	if m == nil {
		return 0, fmt.Errorf("must be a bandwidth such as 10kbps, 50Mbps or 1Gbps, got %q", b.Limit)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bandwidth %q: %w", b.Limit, err)
	}
	switch m[2] {
	case "Mbps":
		n *= 1000
	case "Gbps":
		n *= 1000 * 1000
	}
	return n, nil
}

// TopTargetRef implements Policy.
func (p *MeshFaultInjection) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy.
func (p *MeshFaultInjection) Entries() (to, from []PolicyEntry) {
	return nil, itemEntries("from", p.Spec.From)
}

// Validate implements Object.
func (p *MeshFaultInjection) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	if len(p.Spec.From) == 0 {
		verr.Add(sp.Field("from"), "must have at least one entry")
	}
	validateItems(sp.Field("from"), p.Spec.From, []string{TargetMesh, TargetMeshSubset, TargetMeshService, TargetMeshServiceSubset}, p.Mesh, validateFaultConf, verr)
	return verr
}

func validateFaultConf(p validation.Path, c *MeshFaultInjectionConf, verr *validation.Error) {
	for i, f := range c.HTTP {
		fp := p.Field("http").Index(i)
		if f.Abort == nil && f.Delay == nil && f.ResponseBandwidth == nil {
			verr.Add(fp, "must set at least one of abort, delay or responseBandwidth")
		}
		if a := f.Abort; a != nil {
			validateStatus(fp.Field("abort").Field("httpStatus"), int64(a.HTTPStatus), verr)
			validateRequiredPercent(fp.Field("abort").Field("percentage"), a.Percentage, verr)
		}
		if d := f.Delay; d != nil {
			validateDurationNonNegative(fp.Field("delay").Field("value"), &d.Value, verr)
			validateRequiredPercent(fp.Field("delay").Field("percentage"), d.Percentage, verr)
		}
		if b := f.ResponseBandwidth; b != nil {
			if kbps, err := b.BandwidthKbps(); err != nil {
				verr.Add(fp.Field("responseBandwidth").Field("limit"), err.Error())
			} else if kbps == 0 {
				verr.Add(fp.Field("responseBandwidth").Field("limit"), "must be greater than zero")
			}
			validateRequiredPercent(fp.Field("responseBandwidth").Field("percentage"), b.Percentage, verr)
		}
	}
}

func validateRequiredPercent(p validation.Path, n Number, verr *validation.Error) {
	if !n.IsSet() {
		verr.Add(p, "must be set to a percentage from 0 to 100")
		return
	}
	validateNumberPercent(p, &n, verr)
}
