package devdemo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// TestNewNeedsTheServerID: agents sign the CP's server ID into their
// logins; a dev.env without it (from an older make run) is refused rather
// than run agents with whatever default they have.
func TestNewNeedsTheServerID(t *testing.T) {
	dir := t.TempDir()
	base := "ECSMESH_DEV_ADMIN_URL=http://127.0.0.1:5681\nKUMA_CONTROL_PLANE_URL=https://127.0.0.1:5678\n" + agentVars(Agents)
	if err := os.WriteFile(filepath.Join(dir, "dev.env"), []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "ECSMESH_AWSIAM_SERVER_ID") {
		t.Fatalf("New = %v, want an error naming ECSMESH_AWSIAM_SERVER_ID", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dev.env"), []byte(base+"ECSMESH_AWSIAM_SERVER_ID=ecsmesh-dev-1f2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if env := d.agentEnv("web"); env[len(env)-1] != "ECSMESH_AWSIAM_SERVER_ID=ecsmesh-dev-1f2e" {
		t.Errorf("the agent's environment ends with %q", env[len(env)-1])
	}
}

func agentVars(agents []AgentSpec) string {
	var b strings.Builder
	for _, a := range agents {
		b.WriteString(devcloud.EnvPrefix(a.Name) + "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:1/ecs-credentials/" + a.Name + "\n")
	}
	return b.String()
}

// TestNewNeedsEveryAgentsTask: a dev.env from a `make run` whose local AWS
// predates an agent's task (no backend-v2 credentials) is refused, naming
// the variable, instead of starting an agent that cannot log in.
func TestNewNeedsEveryAgentsTask(t *testing.T) {
	dir := t.TempDir()
	env := "ECSMESH_DEV_ADMIN_URL=http://127.0.0.1:5681\nECSMESH_AWSIAM_SERVER_ID=ecsmesh-dev-1f2e\n" + agentVars(Agents[:len(Agents)-1])
	if err := os.WriteFile(filepath.Join(dir, "dev.env"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "BACKEND_V2_AWS_CONTAINER_CREDENTIALS_FULL_URI") {
		t.Fatalf("New = %v, want an error naming BACKEND_V2_AWS_CONTAINER_CREDENTIALS_FULL_URI", err)
	}
}
