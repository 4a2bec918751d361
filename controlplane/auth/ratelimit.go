package auth

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// RateLimit is a token bucket per source address in front of the STS
// call of a login: a forged but well-formed login costs the CP one STS
// round trip, so one source may not make it call STS faster than this.
type RateLimit struct {
	// PerSecond is the steady rate (default 5; negative disables).
	PerSecond float64
	// Burst is the bucket size (default 50: tasks on one EC2 host share
	// its address and may all start at once).
	Burst int
}

// Defaults of RateLimit.
const (
	DefaultLoginsPerSecond = 5
	DefaultLoginBurst      = 50
	// maxSources bounds the buckets kept; idle full buckets are dropped
	// first.
	maxSources = 100_000
)

type sourceIPKey struct{}

// WithSourceIP tells Authenticate which address the login came from (the
// HTTP handlers set it from the connection); without it no per-source
// limit applies.
func WithSourceIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, sourceIPKey{}, ip)
}

// SourceIP returns the address WithSourceIP recorded.
func SourceIP(ctx context.Context) string {
	ip, _ := ctx.Value(sourceIPKey{}).(string)
	return ip
}

// limiter keeps one bucket per source address.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(cfg RateLimit, now func() time.Time) *limiter {
	if cfg.PerSecond < 0 {
		return nil
	}
	if cfg.PerSecond == 0 {
		cfg.PerSecond = DefaultLoginsPerSecond
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultLoginBurst
	}
	return &limiter{rate: rate.Limit(cfg.PerSecond), burst: cfg.Burst, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token from ip's bucket; it returns how long to wait when
// there is none.
func (l *limiter) allow(ip string) (bool, time.Duration) {
	if l == nil || ip == "" {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= maxSources {
			l.evict(now)
		}
		b = &bucket{l: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	r := b.l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict drops buckets idle long enough to be full again, or, if none,
// the oldest half (under a flood of addresses the limit is best effort).
func (l *limiter) evict(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second))
	for ip, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, ip)
		}
	}
	if len(l.buckets) < maxSources {
		return
	}
	n := 0
	for ip := range l.buckets {
		if n%2 == 0 {
			delete(l.buckets, ip)
		}
		n++
	}
}

func rateLimited(wait time.Duration) *problem.Problem {
	secs := int(wait/time.Second) + 1
	p := problem.New(http.StatusTooManyRequests, ReasonRateLimited, "too many IAM logins from this address",
		"retry in "+strconv.Itoa(secs)+" s")
	return p
}
