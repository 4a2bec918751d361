package fakeecsmeta

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMetadata(t *testing.T) {
	f := New(Task{Cluster: "arn:aws:ecs:us-east-1:111122223333:cluster/prod", TaskARN: "arn:aws:ecs:us-east-1:111122223333:task/prod/abc",
		AvailabilityZone: "us-east-1a", IPv4Address: "10.0.1.23", Self: "sidecar",
		Containers: []Container{{Name: "sidecar", KnownStatus: "RUNNING"}, {Name: "app", KnownStatus: "RUNNING", Health: Healthy}}}, nil)
	get := func(path string) map[string]any {
		w := httptest.NewRecorder()
		f.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		var m map[string]any
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &m) != nil {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		return m
	}
	if get("/")["Name"] != "sidecar" {
		t.Fatal("self container")
	}
	if err := f.SetHealth("app", Unhealthy); err != nil {
		t.Fatal(err)
	}
	task := get("/task")
	app := task["Containers"].([]any)[1].(map[string]any)
	if task["AvailabilityZone"] != "us-east-1a" || app["Health"].(map[string]any)["status"] != Unhealthy {
		t.Fatalf("task = %v", task)
	}
	if f.SetKnownStatus("nope", "STOPPED", nil) == nil {
		t.Fatal("unknown container accepted")
	}
}
