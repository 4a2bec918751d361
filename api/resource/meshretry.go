package resource

import (
	"fmt"
	"strconv"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// MeshRetry retries failed requests and connection attempts to destinations
// (Kuma's schema).
type MeshRetry struct {
	Meta
	Spec MeshRetrySpec `json:"spec"`
}

// MeshRetrySpec is the body of a MeshRetry.
type MeshRetrySpec struct {
	// TargetRef selects the Dataplanes configured; Mesh when absent.
	TargetRef *PolicyTargetRef `json:"targetRef,omitempty"`
	// To configures traffic to destinations (Mesh or MeshService).
	To []PolicyItem[MeshRetryConf] `json:"to,omitempty"`
}

// MeshRetryConf holds the retry settings per protocol.
type MeshRetryConf struct {
	TCP  *MeshRetryTCP  `json:"tcp,omitempty"`
	HTTP *MeshRetryHTTP `json:"http,omitempty"`
	GRPC *MeshRetryGRPC `json:"grpc,omitempty"`
}

// MeshRetryTCP retries TCP connection attempts.
type MeshRetryTCP struct {
	// MaxConnectAttempt is how many connection attempts are made.
	MaxConnectAttempt *uint32 `json:"maxConnectAttempt,omitempty"`
}

// MeshRetryHTTP retries HTTP requests.
type MeshRetryHTTP struct {
	// NumRetries is how many retries are made (Envoy default 1).
	NumRetries *uint32 `json:"numRetries,omitempty"`
	// PerTryTimeout bounds each attempt; 0 turns it off.
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`
	// BackOff spaces retries exponentially.
	BackOff *RetryBackOff `json:"backOff,omitempty"`
	// RateLimitedBackOff spaces retries by the upstream's reset headers.
	RateLimitedBackOff *RateLimitedBackOff `json:"rateLimitedBackOff,omitempty"`
	// RetryOn lists the conditions that cause a retry: 5xx, GatewayError,
	// Reset, Retriable4xx, ConnectFailure, EnvoyRatelimited, RefusedStream,
	// Http3PostConnectFailure, HttpMethod<Method> or a status code ("503").
	RetryOn []string `json:"retryOn,omitzero"`
	// RetriableResponseHeaders retry when a response header matches.
	RetriableResponseHeaders []HeaderMatch `json:"retriableResponseHeaders,omitzero"`
	// RetriableRequestHeaders allow retries only for matching requests.
	RetriableRequestHeaders []HeaderMatch `json:"retriableRequestHeaders,omitzero"`
	// HostSelection avoids hosts already tried.
	HostSelection []RetryHostPredicate `json:"hostSelection,omitzero"`
	// HostSelectionMaxAttempts bounds host reselection.
	HostSelectionMaxAttempts *int64 `json:"hostSelectionMaxAttempts,omitempty"`
}

// MeshRetryGRPC retries gRPC requests.
type MeshRetryGRPC struct {
	NumRetries         *uint32             `json:"numRetries,omitempty"`
	PerTryTimeout      *Duration           `json:"perTryTimeout,omitempty"`
	BackOff            *RetryBackOff       `json:"backOff,omitempty"`
	RateLimitedBackOff *RateLimitedBackOff `json:"rateLimitedBackOff,omitempty"`
	// RetryOn lists gRPC statuses: Canceled, DeadlineExceeded, Internal,
	// ResourceExhausted, Unavailable.
	RetryOn []string `json:"retryOn,omitzero"`
}

// RetryBackOff is an exponential back-off.
type RetryBackOff struct {
	// BaseInterval is the first wait (Envoy default 25ms).
	BaseInterval *Duration `json:"baseInterval,omitempty"`
	// MaxInterval caps the wait (default 10 × BaseInterval).
	MaxInterval *Duration `json:"maxInterval,omitempty"`
}

// RateLimitedBackOff waits as long as the upstream's reset headers say.
type RateLimitedBackOff struct {
	ResetHeaders []ResetHeader `json:"resetHeaders,omitzero"`
	// MaxInterval caps the wait (default 300s).
	MaxInterval *Duration `json:"maxInterval,omitempty"`
}

// ResetHeader names a response header holding the time to wait.
type ResetHeader struct {
	Name string `json:"name"`
	// Format is Seconds or UnixTimestamp.
	Format string `json:"format"`
}

// RetryHostPredicate chooses hosts for a retry: OmitPreviousHosts or
// OmitPreviousPriorities.
type RetryHostPredicate struct {
	_         unsupported `refused:"tags" why:"OmitHostsWithTags is not supported: ecsmesh endpoints carry no tag metadata"`
	Predicate string      `json:"predicate"`
	// UpdateFrequency (OmitPreviousPriorities) is how often the priority
	// load is recomputed.
	UpdateFrequency int32 `json:"updateFrequency,omitempty"`
}

var httpRetryOn = map[string]bool{
	"5xx": true, "5XX": true, "GatewayError": true, "Reset": true, "Retriable4xx": true, "ConnectFailure": true,
	"EnvoyRatelimited": true, "RefusedStream": true, "Http3PostConnectFailure": true,
	"HttpMethodConnect": true, "HttpMethodDelete": true, "HttpMethodGet": true, "HttpMethodHead": true,
	"HttpMethodOptions": true, "HttpMethodPatch": true, "HttpMethodPost": true, "HttpMethodPut": true, "HttpMethodTrace": true,
}

var grpcRetryOn = map[string]bool{"Canceled": true, "DeadlineExceeded": true, "Internal": true, "ResourceExhausted": true, "Unavailable": true}

// TopTargetRef implements Policy.
func (p *MeshRetry) TopTargetRef() PolicyTargetRef { return topTargetRef(p.Spec.TargetRef) }

// Entries implements Policy.
func (p *MeshRetry) Entries() (to, from []PolicyEntry) { return itemEntries("to", p.Spec.To), nil }

// Validate implements Object.
func (p *MeshRetry) Validate() *validation.Error {
	verr := &validation.Error{}
	validatePolicy(&p.Meta, p.Spec.TargetRef, verr)
	sp := validation.Root().Field("spec")
	if len(p.Spec.To) == 0 {
		verr.Add(sp.Field("to"), "must have at least one entry")
	}
	validateItems(sp.Field("to"), p.Spec.To, []string{TargetMesh, TargetMeshService}, p.Mesh, validateMeshRetryConf, verr)
	return verr
}

func validateMeshRetryConf(p validation.Path, c *MeshRetryConf, verr *validation.Error) {
	if c.TCP == nil && c.HTTP == nil && c.GRPC == nil {
		verr.Add(p, "must set at least one of tcp, http or grpc")
	}
	if t := c.TCP; t != nil {
		switch {
		case t.MaxConnectAttempt == nil:
			verr.Add(p.Field("tcp").Field("maxConnectAttempt"), "must be set")
		case *t.MaxConnectAttempt == 0:
			verr.Add(p.Field("tcp").Field("maxConnectAttempt"), "must be greater than zero")
		}
	}
	if h := c.HTTP; h != nil {
		hp := p.Field("http")
		if h.NumRetries == nil && h.PerTryTimeout == nil && h.BackOff == nil && h.RateLimitedBackOff == nil &&
			h.RetryOn == nil && h.RetriableResponseHeaders == nil && h.RetriableRequestHeaders == nil &&
			h.HostSelection == nil && h.HostSelectionMaxAttempts == nil {
			verr.Add(hp, "must not be empty")
		}
		validateRetryCommon(hp, h.PerTryTimeout, h.BackOff, h.RateLimitedBackOff, verr)
		for i, r := range h.RetryOn {
			if !httpRetryOn[r] && !isStatusCode(r) {
				verr.Add(hp.Field("retryOn").Index(i), fmt.Sprintf("unknown condition %q: use 5xx, GatewayError, Reset, Retriable4xx, ConnectFailure, EnvoyRatelimited, RefusedStream, Http3PostConnectFailure, HttpMethod<Method> or a status code such as \"503\"", r))
			}
		}
		validateHeaderMatches(hp.Field("retriableResponseHeaders"), h.RetriableResponseHeaders, verr)
		validateHeaderMatches(hp.Field("retriableRequestHeaders"), h.RetriableRequestHeaders, verr)
		validateHostSelection(hp.Field("hostSelection"), h.HostSelection, verr)
		if h.HostSelectionMaxAttempts != nil && *h.HostSelectionMaxAttempts < 0 {
			verr.Add(hp.Field("hostSelectionMaxAttempts"), "must not be negative")
		}
	}
	if g := c.GRPC; g != nil {
		gp := p.Field("grpc")
		if g.NumRetries == nil && g.PerTryTimeout == nil && g.BackOff == nil && g.RateLimitedBackOff == nil && g.RetryOn == nil {
			verr.Add(gp, "must not be empty")
		}
		validateRetryCommon(gp, g.PerTryTimeout, g.BackOff, g.RateLimitedBackOff, verr)
		for i, r := range g.RetryOn {
			if !grpcRetryOn[r] {
				verr.Add(gp.Field("retryOn").Index(i), fmt.Sprintf("unknown condition %q: use Canceled, DeadlineExceeded, Internal, ResourceExhausted or Unavailable", r))
			}
		}
	}
}

func isStatusCode(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 100 && n <= 599 && strconv.Itoa(n) == s
}

func validateRetryCommon(p validation.Path, perTry *Duration, b *RetryBackOff, rl *RateLimitedBackOff, verr *validation.Error) {
	validateDurationNonNegative(p.Field("perTryTimeout"), perTry, verr)
	if b != nil {
		bp := p.Field("backOff")
		if b.BaseInterval == nil && b.MaxInterval == nil {
			verr.Add(bp, "must set baseInterval, maxInterval or both")
		}
		validateDurationPositive(bp.Field("baseInterval"), b.BaseInterval, verr)
		validateDurationPositive(bp.Field("maxInterval"), b.MaxInterval, verr)
		if b.BaseInterval != nil && b.MaxInterval != nil && b.MaxInterval.Duration < b.BaseInterval.Duration {
			verr.Add(bp.Field("maxInterval"), "must not be shorter than baseInterval")
		}
	}
	if rl != nil {
		rp := p.Field("rateLimitedBackOff")
		validateDurationPositive(rp.Field("maxInterval"), rl.MaxInterval, verr)
		if len(rl.ResetHeaders) == 0 {
			verr.Add(rp.Field("resetHeaders"), "must list at least one header")
		}
		for i, h := range rl.ResetHeaders {
			hp := rp.Field("resetHeaders").Index(i)
			validateHeaderName(hp.Field("name"), h.Name, verr)
			if h.Format != "Seconds" && h.Format != "UnixTimestamp" {
				verr.Add(hp.Field("format"), fmt.Sprintf("must be Seconds or UnixTimestamp, got %q", h.Format))
			}
		}
	}
}

func validateHostSelection(p validation.Path, preds []RetryHostPredicate, verr *validation.Error) {
	priorities := false
	for i, pr := range preds {
		pp := p.Index(i)
		switch pr.Predicate {
		case "OmitPreviousHosts":
		case "OmitPreviousPriorities":
			if priorities {
				verr.Add(pp.Field("predicate"), "OmitPreviousPriorities must be listed once")
			}
			priorities = true
			if pr.UpdateFrequency <= 0 {
				verr.Add(pp.Field("updateFrequency"), "must be greater than zero")
			}
		case "OmitHostsWithTags":
			verr.Add(pp.Field("predicate"), "not supported by ecsmesh: ecsmesh endpoints carry no tag metadata")
		default:
			verr.Add(pp.Field("predicate"), fmt.Sprintf("must be OmitPreviousHosts or OmitPreviousPriorities, got %q", pr.Predicate))
		}
	}
}
