// Package fakeecs is a fake of the Amazon ECS JSON 1.1 API for ecsmesh's tests
// and local run: DescribeTasks and DescribeTaskDefinition, SigV4-verified
// (service "ecs"), with the real JSON error shape (X-Amzn-Errortype,
// {"__type","message"}).
package fakeecs

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

// TargetPrefix is the X-Amz-Target prefix of ECS operations.
const TargetPrefix = "AmazonEC2ContainerServiceV20141113."

const maxBody = 64 << 10

// Task is a task the fake knows.
type Task struct {
	Account string
	Region  string
	// Cluster is the cluster name.
	Cluster string
	// TaskID is the last part of the task ARN (and, for ECS task roles, the
	// role session name).
	TaskID           string
	LastStatus       string
	DesiredStatus    string
	AvailabilityZone string
	// TaskRoleARN is the task definition's role.
	TaskRoleARN string
	// OverrideRoleARN, when set, is returned as overrides.taskRoleArn.
	OverrideRoleARN string
	Family          string
}

// ARN returns the task ARN.
func (t Task) ARN() string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s", t.Region, t.Account, t.Cluster, t.TaskID)
}

// ClusterARN returns the cluster ARN.
func (t Task) ClusterARN() string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", t.Region, t.Account, t.Cluster)
}

// TaskDefinitionARN returns the task definition ARN (revision 1).
func (t Task) TaskDefinitionARN() string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:1", t.Region, t.Account, t.Family)
}

// Fake is the ECS fake; it is an http.Handler. Safe for concurrent use.
type Fake struct {
	verifier *sigv4check.Verifier
	faults   awsfault.Injector

	mu    sync.Mutex
	tasks map[string]Task // by ARN
	calls int
}

// New returns an ECS fake verifying signatures with v.
func New(v *sigv4check.Verifier) *Fake { return &Fake{verifier: v, tasks: map[string]Task{}} }

// Faults returns the fault injector of the fake.
func (f *Fake) Faults() *awsfault.Injector { return &f.faults }

// AddTask adds or replaces a task; empty statuses default to RUNNING and
// an empty family to the cluster name.
func (f *Fake) AddTask(t Task) Task {
	if t.LastStatus == "" {
		t.LastStatus = "RUNNING"
	}
	if t.DesiredStatus == "" {
		t.DesiredStatus = "RUNNING"
	}
	if t.Family == "" {
		t.Family = t.Cluster + "-app"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[t.ARN()] = t
	return t
}

// SetStatus changes a task's last status (e.g. STOPPED).
func (f *Fake) SetStatus(taskARN, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tasks[taskARN]; ok {
		t.LastStatus = status
		f.tasks[taskARN] = t
	}
}

// Calls returns how many operations succeeded.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := sigv4check.RequestID()
	if f.faults.Serve(w, r, awsfault.JSON, "") {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody || r.Method != http.MethodPost {
		sigv4check.WriteJSON(w, sigv4check.Errorf(http.StatusBadRequest, "SerializationException", "bad request"), rid)
		return
	}
	cred, err := f.verifier.Verify(r, body, "ecs")
	if err != nil {
		sigv4check.WriteJSON(w, err, rid)
		return
	}
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	switch op {
	case "DescribeTasks":
		f.describeTasks(w, cred, body, rid)
	case "DescribeTaskDefinition":
		f.describeTaskDefinition(w, cred, body, rid)
	default:
		sigv4check.WriteJSON(w, sigv4check.Errorf(http.StatusBadRequest, "UnknownOperationException", "unknown operation %q", op), rid)
	}
}

func (f *Fake) describeTasks(w http.ResponseWriter, caller sigv4check.Credential, body []byte, rid string) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.Tasks) == 0 || len(in.Tasks) > 100 {
		sigv4check.WriteJSON(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidParameterException", "tasks must hold 1 to 100 entries"), rid)
		return
	}
	if in.Cluster == "" {
		in.Cluster = "default"
	}
	type failure struct {
		Arn    string `json:"arn"`
		Reason string `json:"reason"`
	}
	out := struct {
		Tasks    []map[string]any `json:"tasks"`
		Failures []failure        `json:"failures"`
	}{Tasks: []map[string]any{}, Failures: []failure{}}
	f.mu.Lock()
	f.calls++
	for _, id := range in.Tasks {
		t, ok := f.find(caller.Principal.Account, in.Cluster, id)
		if !ok {
			out.Failures = append(out.Failures, failure{Arn: id, Reason: "MISSING"})
			continue
		}
		task := map[string]any{
			"taskArn": t.ARN(), "clusterArn": t.ClusterARN(), "lastStatus": t.LastStatus,
			"desiredStatus": t.DesiredStatus, "availabilityZone": t.AvailabilityZone,
			"taskDefinitionArn": t.TaskDefinitionARN(), "launchType": "FARGATE",
			"overrides": map[string]any{"containerOverrides": []any{}},
		}
		if t.OverrideRoleARN != "" {
			task["overrides"].(map[string]any)["taskRoleArn"] = t.OverrideRoleARN
		}
		out.Tasks = append(out.Tasks, task)
	}
	f.mu.Unlock()
	writeJSON(w, out, rid)
}

// find looks a task up by ARN or ID within cluster (name or ARN); f.mu held.
func (f *Fake) find(account, cluster, id string) (Task, bool) {
	for _, t := range f.tasks {
		if t.Account != account || (cluster != t.Cluster && cluster != t.ClusterARN()) {
			continue
		}
		if id == t.TaskID || id == t.ARN() {
			return t, true
		}
	}
	return Task{}, false
}

func (f *Fake) describeTaskDefinition(w http.ResponseWriter, caller sigv4check.Credential, body []byte, rid string) {
	var in struct {
		TaskDefinition string `json:"taskDefinition"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.TaskDefinition == "" {
		sigv4check.WriteJSON(w, sigv4check.Errorf(http.StatusBadRequest, "InvalidParameterException", "taskDefinition is required"), rid)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tasks {
		if t.Account == caller.Principal.Account && (t.TaskDefinitionARN() == in.TaskDefinition || t.Family == in.TaskDefinition) {
			f.calls++
			writeJSON(w, map[string]any{"taskDefinition": map[string]any{
				"taskDefinitionArn": t.TaskDefinitionARN(), "family": t.Family, "revision": 1,
				"taskRoleArn": t.TaskRoleARN, "status": "ACTIVE", "containerDefinitions": []any{},
			}}, rid)
			return
		}
	}
	sigv4check.WriteJSON(w, sigv4check.Errorf(http.StatusBadRequest, "ClientException", "Unable to describe task definition."), rid)
}

func writeJSON(w http.ResponseWriter, v any, rid string) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", rid)
	_, _ = w.Write(b)
}
