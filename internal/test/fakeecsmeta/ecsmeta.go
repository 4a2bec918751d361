// Package fakeecsmeta is a fake of the ECS task metadata endpoint v4
// (ECS_CONTAINER_METADATA_URI_V4) for ecsmesh's agent tests and local run:
// GET / returns the sidecar container's metadata, GET /task the task's,
// with containers' known status and health that tests can flip.
package fakeecsmeta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Health statuses ECS reports.
const (
	Healthy   = "HEALTHY"
	Unhealthy = "UNHEALTHY"
	Unknown   = "UNKNOWN"
)

// Container is one container of the task.
type Container struct {
	Name string
	// KnownStatus is RUNNING, STOPPED, ...
	KnownStatus string
	// Health is HEALTHY, UNHEALTHY or UNKNOWN; empty means no health check.
	Health   string
	ExitCode *int
}

// Task is the task the endpoint describes.
type Task struct {
	Cluster          string // ARN
	TaskARN          string
	Family           string
	Revision         string
	AvailabilityZone string
	IPv4Address      string
	// Self is the name of the container the endpoint answers for at "/".
	Self       string
	Containers []Container
}

// Fake is the metadata endpoint; it is an http.Handler. Safe for
// concurrent use.
type Fake struct {
	now func() time.Time

	mu   sync.Mutex
	task Task
}

// New returns an endpoint describing task; now may be nil.
func New(task Task, now func() time.Time) *Fake {
	if now == nil {
		now = time.Now
	}
	return &Fake{now: now, task: task}
}

// SetHealth sets a container's health status.
func (f *Fake) SetHealth(container, status string) error {
	return f.update(container, func(c *Container) { c.Health = status })
}

// SetKnownStatus sets a container's known status (e.g. STOPPED) and exit
// code.
func (f *Fake) SetKnownStatus(container, status string, exitCode *int) error {
	return f.update(container, func(c *Container) { c.KnownStatus, c.ExitCode = status, exitCode })
}

func (f *Fake) update(name string, fn func(*Container)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.task.Containers {
		if f.task.Containers[i].Name == name {
			fn(&f.task.Containers[i])
			return nil
		}
	}
	return fmt.Errorf("ecsmeta: no container %q", name)
}

// ServeHTTP implements http.Handler: GET / and GET /task (a trailing
// prefix, e.g. "/v4/abc", is stripped by whoever mounts it).
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	t := f.task
	t.Containers = append([]Container(nil), f.task.Containers...)
	f.mu.Unlock()
	var v any
	switch r.URL.Path {
	case "", "/":
		for _, c := range t.Containers {
			if c.Name == t.Self {
				v = f.container(t, c)
			}
		}
		if v == nil {
			http.Error(w, "no such container", http.StatusNotFound)
			return
		}
	case "/task":
		cs := make([]any, 0, len(t.Containers))
		for _, c := range t.Containers {
			cs = append(cs, f.container(t, c))
		}
		v = map[string]any{
			"Cluster": t.Cluster, "TaskARN": t.TaskARN, "Family": t.Family, "Revision": t.Revision,
			"DesiredStatus": "RUNNING", "KnownStatus": "RUNNING", "AvailabilityZone": t.AvailabilityZone,
			"LaunchType": "FARGATE", "Containers": cs,
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *Fake) container(t Task, c Container) map[string]any {
	m := map[string]any{
		"DockerId": "d-" + c.Name, "Name": c.Name, "DockerName": "ecs-" + c.Name,
		"KnownStatus": c.KnownStatus, "DesiredStatus": "RUNNING", "Type": "NORMAL",
		"Labels":   map[string]string{"com.amazonaws.ecs.cluster": t.Cluster, "com.amazonaws.ecs.task-arn": t.TaskARN, "com.amazonaws.ecs.container-name": c.Name},
		"Networks": []any{map[string]any{"NetworkMode": "awsvpc", "IPv4Addresses": []string{t.IPv4Address}}},
	}
	if c.ExitCode != nil {
		m["ExitCode"] = *c.ExitCode
	}
	if c.Health != "" {
		m["Health"] = map[string]any{"status": c.Health, "statusSince": f.now().UTC().Format(time.RFC3339Nano)}
	}
	return m
}
