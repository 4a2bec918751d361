// Package ecsmeta reads the ECS task metadata endpoint v4
// (ECS_CONTAINER_METADATA_URI_V4) for the sidecar agent: the task's ARN,
// cluster, availability zone, the task's IPv4 address and its containers
// with their known status and health. Reads are retried while the endpoint
// warms up (connection refused, 5xx, 404 right after the task starts).
package ecsmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// EnvURI is the environment variable ECS sets to the endpoint's base URL.
const EnvURI = "ECS_CONTAINER_METADATA_URI_V4"

// Health statuses ECS reports for a container with a health check.
const (
	Healthy   = "HEALTHY"
	Unhealthy = "UNHEALTHY"
	Unknown   = "UNKNOWN"
)

// Known statuses of a container.
const (
	StatusRunning = "RUNNING"
	StatusStopped = "STOPPED"
)

// maxBody caps a metadata document.
const maxBody = 4 << 20

// Container is one container of the task.
type Container struct {
	Name          string
	DockerName    string
	KnownStatus   string
	DesiredStatus string
	// Health is HEALTHY, UNHEALTHY or UNKNOWN; empty when the container has
	// no health check.
	Health   string
	ExitCode *int
	// IPv4 are the container's IPv4 addresses (awsvpc: the task ENI's).
	IPv4 []string
}

// Stopped reports whether the container has stopped.
func (c Container) Stopped() bool { return c.KnownStatus == StatusStopped }

// Task is the task the agent runs in.
type Task struct {
	ARN              string
	Cluster          string
	Family           string
	Revision         string
	AvailabilityZone string
	KnownStatus      string
	Containers       []Container
}

// ID returns the task ID, the last segment of the ARN.
func (t Task) ID() string {
	if i := strings.LastIndexByte(t.ARN, '/'); i >= 0 {
		return t.ARN[i+1:]
	}
	return t.ARN
}

// ClusterName returns the cluster's short name (the cluster field may be an
// ARN or a name).
func (t Task) ClusterName() string {
	if i := strings.LastIndexByte(t.Cluster, '/'); i >= 0 {
		return t.Cluster[i+1:]
	}
	return t.Cluster
}

// Container returns the named container.
func (t Task) Container(name string) (Container, bool) {
	for _, c := range t.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return Container{}, false
}

// IPv4 returns the task's first IPv4 address found on its containers.
func (t Task) IPv4() string {
	for _, c := range t.Containers {
		for _, ip := range c.IPv4 {
			if ip != "" {
				return ip
			}
		}
	}
	return ""
}

type wireContainer struct {
	DockerName    string `json:"DockerName"`
	Name          string `json:"Name"`
	KnownStatus   string `json:"KnownStatus"`
	DesiredStatus string `json:"DesiredStatus"`
	ExitCode      *int   `json:"ExitCode"`
	Health        *struct {
		Status string `json:"status"`
	} `json:"Health"`
	Networks []struct {
		IPv4Addresses []string `json:"IPv4Addresses"`
	} `json:"Networks"`
}

type wireTask struct {
	Cluster          string          `json:"Cluster"`
	TaskARN          string          `json:"TaskARN"`
	Family           string          `json:"Family"`
	Revision         string          `json:"Revision"`
	KnownStatus      string          `json:"KnownStatus"`
	AvailabilityZone string          `json:"AvailabilityZone"`
	Containers       []wireContainer `json:"Containers"`
}

func (w wireContainer) container() Container {
	c := Container{Name: w.Name, DockerName: w.DockerName, KnownStatus: w.KnownStatus, DesiredStatus: w.DesiredStatus, ExitCode: w.ExitCode}
	if w.Health != nil {
		c.Health = w.Health.Status
	}
	for _, n := range w.Networks {
		c.IPv4 = append(c.IPv4, n.IPv4Addresses...)
	}
	return c
}

// ParseTask decodes the JSON of GET ${ECS_CONTAINER_METADATA_URI_V4}/task.
func ParseTask(b []byte) (Task, error) {
	var w wireTask
	if err := json.Unmarshal(b, &w); err != nil {
		return Task{}, fmt.Errorf("ecsmeta: decoding task metadata: %w", err)
	}
	if w.TaskARN == "" {
		return Task{}, errors.New("ecsmeta: task metadata has no TaskARN")
	}
	t := Task{ARN: w.TaskARN, Cluster: w.Cluster, Family: w.Family, Revision: w.Revision,
		AvailabilityZone: w.AvailabilityZone, KnownStatus: w.KnownStatus}
	for _, c := range w.Containers {
		t.Containers = append(t.Containers, c.container())
	}
	return t, nil
}

// ParseContainer decodes the JSON of GET ${ECS_CONTAINER_METADATA_URI_V4}.
func ParseContainer(b []byte) (Container, error) {
	var w wireContainer
	if err := json.Unmarshal(b, &w); err != nil {
		return Container{}, fmt.Errorf("ecsmeta: decoding container metadata: %w", err)
	}
	if w.Name == "" {
		return Container{}, errors.New("ecsmeta: container metadata has no Name")
	}
	return w.container(), nil
}

// Client reads the endpoint.
type Client struct {
	base  string
	http  *http.Client
	log   *slog.Logger
	sleep func(context.Context, time.Duration) error
	// Attempts and Backoff bound the warm-up retries.
	attempts int
	backoff  time.Duration
}

// Config configures a Client.
type Config struct {
	// BaseURL is ECS_CONTAINER_METADATA_URI_V4. Required.
	BaseURL string
	// HTTPClient; nil uses one with a 5 s timeout.
	HTTPClient *http.Client
	// Logger; nil discards.
	Logger *slog.Logger
	// Sleep waits between retries; nil uses a timer (tests inject one).
	Sleep func(context.Context, time.Duration) error
	// Attempts (default 30) and Backoff (default 200 ms, doubled up to 2 s)
	// bound retries while the endpoint warms up.
	Attempts int
	Backoff  time.Duration
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, fmt.Errorf("ecsmeta: no metadata endpoint: %s is not set (is the agent running in an ECS task?)", EnvURI)
	}
	c := &Client{base: strings.TrimRight(cfg.BaseURL, "/"), http: cfg.HTTPClient, log: cfg.Logger, sleep: cfg.Sleep,
		attempts: cfg.Attempts, backoff: cfg.Backoff}
	if c.http == nil {
		c.http = &http.Client{Timeout: 5 * time.Second}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.sleep == nil {
		c.sleep = Sleep
	}
	if c.attempts <= 0 {
		c.attempts = 30
	}
	if c.backoff <= 0 {
		c.backoff = 200 * time.Millisecond
	}
	return c, nil
}

// Task reads the task metadata, retrying while the endpoint warms up.
func (c *Client) Task(ctx context.Context) (Task, error) {
	b, err := c.get(ctx, "/task", c.attempts)
	if err != nil {
		return Task{}, err
	}
	return ParseTask(b)
}

// TaskOnce reads the task metadata without retrying (health sync polls it
// every second and tolerates a miss).
func (c *Client) TaskOnce(ctx context.Context) (Task, error) {
	b, err := c.get(ctx, "/task", 1)
	if err != nil {
		return Task{}, err
	}
	return ParseTask(b)
}

// Self reads the metadata of the agent's own container.
func (c *Client) Self(ctx context.Context) (Container, error) {
	b, err := c.get(ctx, "", c.attempts)
	if err != nil {
		return Container{}, err
	}
	return ParseContainer(b)
}

// retryable is an answer worth waiting for.
type retryable struct{ error }

func (c *Client) get(ctx context.Context, path string, attempts int) ([]byte, error) {
	wait := c.backoff
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			c.log.DebugContext(ctx, "task metadata not available yet; retrying", "error", last, "in", wait)
			if err := c.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("ecsmeta: reading %s%s: %w (last error: %w)", c.base, path, err, last)
			}
			wait = min(2*wait, 2*time.Second)
		}
		b, err := c.getOnce(ctx, path)
		if err == nil {
			return b, nil
		}
		var r retryable
		if !errors.As(err, &r) {
			return nil, err
		}
		last = r.error
	}
	return nil, fmt.Errorf("ecsmeta: reading %s%s: gave up after %d attempts: %w", c.base, path, attempts, last)
}

func (c *Client) getOnce(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("ecsmeta: building request for %s: %w", EnvURI, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ecsmeta: reading %s%s: %w", c.base, path, ctx.Err())
		}
		return nil, retryable{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, retryable{err}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return b, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusTooManyRequests:
		return nil, retryable{fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
	return nil, fmt.Errorf("ecsmeta: reading %s%s: HTTP %d: %s", c.base, path, resp.StatusCode, strings.TrimSpace(string(b)))
}

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
