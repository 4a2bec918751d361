package auth

import (
	"context"
	"errors"
	"sync"
	"time"
)

// MaxRoleCacheTTL bounds how long a GetRole answer is reused (check 11).
const MaxRoleCacheTTL = 5 * time.Minute

// Errors IAM and ECS implementations wrap so the Verifier can classify
// them.
var (
	// ErrNotFound: the role or task does not exist (NoSuchEntity, MISSING).
	ErrNotFound = errors.New("auth: not found")
	// ErrUnavailable: the service could not be reached, timed out,
	// throttled or answered 5xx; the Verifier retries these, boundedly.
	ErrUnavailable = errors.New("auth: AWS service unavailable")
)

// Role is what iam:GetRole says about a role.
type Role struct {
	// ARN is the role ARN, arn:aws:iam::<account>:role/<path><name>.
	ARN string
	// RoleID is the unique ID (AROA...); a re-created role gets a new one.
	RoleID string
	Name   string
	Tags   map[string]string
}

// IAM gets roles with the control plane's own credentials.
type IAM interface {
	// GetRole returns the role named name in account. Errors wrap
	// ErrNotFound or ErrUnavailable when they are such.
	GetRole(ctx context.Context, account, name string) (Role, error)
}

// Task is what ecs:DescribeTasks (and the task definition) say about a
// task.
type Task struct {
	ARN        string
	ClusterARN string
	LastStatus string
	// AvailabilityZone is the zone name, e.g. us-east-1a.
	AvailabilityZone string
	// RoleARN is the task role (override or task definition's).
	RoleARN string
}

// ECS describes tasks with the control plane's own credentials.
type ECS interface {
	// DescribeTask returns the task with ID (or ARN) id in cluster of
	// account. Errors wrap ErrNotFound or ErrUnavailable when they are such.
	DescribeTask(ctx context.Context, account, cluster, id string) (Task, error)
}

type roleKey struct{ account, name string }

type roleEntry struct {
	role    Role
	fetched time.Time
	done    chan struct{}
	err     error
}

// roleCache caches GetRole answers for at most ttl and lets concurrent
// misses for one role share a single call.
type roleCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[roleKey]*roleEntry
	calls   int64
}

func newRoleCache(ttl time.Duration, now func() time.Time) *roleCache {
	if ttl <= 0 || ttl > MaxRoleCacheTTL {
		ttl = MaxRoleCacheTTL
	}
	return &roleCache{ttl: ttl, now: now, entries: map[roleKey]*roleEntry{}}
}

// get returns the cached role or calls fetch once for every concurrent
// caller. Failures are not cached.
func (c *roleCache) get(ctx context.Context, k roleKey, fetch func(context.Context) (Role, error)) (Role, bool, error) {
	c.mu.Lock()
	e, ok := c.entries[k]
	if ok {
		select {
		case <-e.done:
			if e.err == nil && c.now().Sub(e.fetched) < c.ttl {
				c.mu.Unlock()
				return e.role, true, nil
			}
			delete(c.entries, k)
			ok = false
		default:
		}
	}
	if ok {
		c.mu.Unlock()
		select {
		case <-e.done:
			if e.err != nil {
				return Role{}, false, e.err
			}
			return e.role, true, nil
		case <-ctx.Done():
			return Role{}, false, ctx.Err()
		}
	}
	e = &roleEntry{done: make(chan struct{})}
	c.entries[k] = e
	c.calls++
	if len(c.entries) > 10000 {
		c.evictLocked()
	}
	c.mu.Unlock()
	e.role, e.err = fetch(ctx)
	e.fetched = c.now()
	if e.err != nil {
		c.mu.Lock()
		if c.entries[k] == e {
			delete(c.entries, k)
		}
		c.mu.Unlock()
	}
	close(e.done)
	return e.role, false, e.err
}

// forget drops a settled entry so the next get asks IAM.
func (c *roleCache) forget(k roleKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		select {
		case <-e.done:
			delete(c.entries, k)
		default:
		}
	}
}

// evictLocked drops expired entries; c.mu held.
func (c *roleCache) evictLocked() {
	now := c.now()
	for k, e := range c.entries {
		select {
		case <-e.done:
			if now.Sub(e.fetched) >= c.ttl {
				delete(c.entries, k)
			}
		default:
		}
	}
}
