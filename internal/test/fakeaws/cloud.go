// Package fakeaws composes ecsmesh's fake AWS services behind one
// http.Handler, routed by the service of the SigV4 credential scope (or
// X-Amz-Target for JSON protocols): STS, IAM, ECS, plus any service a caller
// registers (the Route53 fake), and ECS task metadata endpoints under
// /ecs-metadata/<id>/. All share one sigv4check.Verifier, so credentials issued
// by the Cloud are valid for every service, as in AWS. Tests point the real
// SDK at it with AWS_ENDPOINT_URL_STS, _IAM, _ECS, _ROUTE_53.
package fakeaws

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ecsmesh/ecsmesh/internal/test/fakeecs"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecsmeta"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeiam"
	"github.com/ecsmesh/ecsmesh/internal/test/fakests"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// MetadataPrefix is where task metadata endpoints are mounted.
const MetadataPrefix = "/ecs-metadata/"

// Cloud is a set of fake AWS services sharing credentials.
type Cloud struct {
	Verifier *sigv4check.Verifier
	STS      *fakests.Fake
	IAM      *fakeiam.Fake
	ECS      *fakeecs.Fake

	mu       sync.RWMutex
	services map[string]http.Handler
	meta     map[string]*fakeecsmeta.Fake
}

// New returns a Cloud whose clock is now (time.Now when nil).
func New(now func() time.Time) *Cloud {
	v := sigv4check.NewVerifier(now)
	c := &Cloud{Verifier: v, IAM: fakeiam.New(v), ECS: fakeecs.New(v), meta: map[string]*fakeecsmeta.Fake{}}
	c.STS = fakests.New(v, c.IAM)
	c.services = map[string]http.Handler{"sts": c.STS, "iam": c.IAM, "ecs": c.ECS}
	return c
}

// Handle registers h for requests signed for service (the credential
// scope's service name, e.g. "route53").
func (c *Cloud) Handle(service string, h http.Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.services[service] = h
}

// AddMetadata mounts a task metadata endpoint at MetadataPrefix+id and
// returns its base URL path (the value for ECS_CONTAINER_METADATA_URI_V4
// after the server's origin).
func (c *Cloud) AddMetadata(id string, f *fakeecsmeta.Fake) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.meta[id] = f
	return MetadataPrefix + id
}

// ServeHTTP implements http.Handler.
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, MetadataPrefix); ok {
		id, sub, _ := strings.Cut(rest, "/")
		c.mu.RLock()
		f := c.meta[id]
		c.mu.RUnlock()
		if f == nil {
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + sub
		f.ServeHTTP(w, r2)
		return
	}
	service := ""
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), fakeecs.TargetPrefix) {
		service = "ecs"
	} else if a, err := sigv4check.ParseAuthorization(r.Header.Get("Authorization")); err == nil {
		service = a.Service
	}
	c.mu.RLock()
	h := c.services[service]
	c.mu.RUnlock()
	if h == nil {
		sigv4check.WriteXML(w, sigv4check.Errorf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"), "", sigv4check.RequestID())
		return
	}
	h.ServeHTTP(w, r)
}
