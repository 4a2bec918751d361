package ecsmeta_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/bootstrap/ecsmeta"
	fakemeta "github.com/ecsmesh/ecsmesh/internal/test/fakeecsmeta"
)

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func fakeTask() fakemeta.Task {
	return fakemeta.Task{
		Cluster: "arn:aws:ecs:us-east-1:111122223333:cluster/prod", TaskARN: "arn:aws:ecs:us-east-1:111122223333:task/prod/0123abcd",
		Family: "web", Revision: "3", AvailabilityZone: "us-east-1a", IPv4Address: "10.0.1.23", Self: "sidecar",
		Containers: []fakemeta.Container{
			{Name: "sidecar", KnownStatus: "RUNNING", Health: fakemeta.Healthy},
			{Name: "app", KnownStatus: "RUNNING", Health: fakemeta.Healthy},
		},
	}
}

func TestTaskAgainstFake(t *testing.T) {
	f := fakemeta.New(fakeTask(), nil)
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := ecsmeta.New(ecsmeta.Config{BaseURL: srv.URL + "/", Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if task.ID() != "0123abcd" || task.ClusterName() != "prod" || task.AvailabilityZone != "us-east-1a" || task.IPv4() != "10.0.1.23" {
		t.Fatalf("task = %+v", task)
	}
	if app, ok := task.Container("app"); !ok || app.Health != ecsmeta.Healthy {
		t.Fatalf("app = %+v", app)
	}
	if err := f.SetHealth("app", fakemeta.Unhealthy); err != nil {
		t.Fatal(err)
	}
	code := 137
	if err := f.SetKnownStatus("sidecar", "STOPPED", &code); err != nil {
		t.Fatal(err)
	}
	task, err = c.TaskOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	app, _ := task.Container("app")
	side, _ := task.Container("sidecar")
	if app.Health != ecsmeta.Unhealthy || !side.Stopped() || side.ExitCode == nil || *side.ExitCode != 137 {
		t.Fatalf("after flips: app=%+v sidecar=%+v", app, side)
	}
	self, err := c.Self(context.Background())
	if err != nil || self.Name != "sidecar" {
		t.Fatalf("self = %+v, %v", self, err)
	}
}

func TestWarmUpRetries(t *testing.T) {
	f := fakemeta.New(fakeTask(), nil)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var slept []time.Duration
	c, _ := ecsmeta.New(ecsmeta.Config{BaseURL: srv.URL, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}})
	if _, err := c.Task(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(slept) != 3 || slept[1] != 2*slept[0] {
		t.Fatalf("slept %v", slept)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"forbidden is final", http.StatusForbidden, "no", "HTTP 403"},
		{"always 500 gives up", http.StatusInternalServerError, "x", "gave up after"},
		{"bad json", http.StatusOK, "{", "decoding task metadata"},
		{"no arn", http.StatusOK, "{}", "no TaskARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, _ := ecsmeta.New(ecsmeta.Config{BaseURL: srv.URL, Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }})
			_, err := c.Task(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := ecsmeta.New(ecsmeta.Config{}); err == nil || !strings.Contains(err.Error(), ecsmeta.EnvURI) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectionRefusedThenCancel(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	c, _ := ecsmeta.New(ecsmeta.Config{BaseURL: url, Sleep: func(ctx context.Context, _ time.Duration) error {
		n++
		if n == 2 {
			cancel()
		}
		return ctx.Err()
	}})
	if _, err := c.Task(ctx); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseTask(f *testing.F) {
	f.Add([]byte(`{"TaskARN":"arn:aws:ecs:r:1:task/c/id","Cluster":"c","Containers":[{"Name":"a","Health":{"status":"HEALTHY"},"Networks":[{"IPv4Addresses":["10.0.0.1"]}]}]}`))
	f.Add([]byte(`{"TaskARN":"x","Containers":[{"ExitCode":1}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		task, err := ecsmeta.ParseTask(b)
		if err == nil {
			_ = task.ID()
			_ = task.IPv4()
			_ = task.ClusterName()
		}
		_, _ = ecsmeta.ParseContainer(b)
	})
}
