package devcloud

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestAgentCredentialsThroughTheRealSDK(t *testing.T) {
	c, err := Start(t.Context(), Options{Services: []Service{{Name: "web", TaskID: "task-web", IP: "10.0.0.10"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, kv := range c.AgentEnv("task-web") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the task's container credentials: %v", err)
	}
	if want := "arn:aws:sts::123456789012:assumed-role/ecsmesh-demo-web/task-web"; *out.Arn != want {
		t.Errorf("caller ARN = %s, want %s", *out.Arn, want)
	}
	if len(c.Records()) != 0 {
		t.Errorf("a new zone holds records: %v", c.Records())
	}
}

// TestServerIDIsUniquePerDataDir: every local run gets its own server ID
// (a login signed for one cannot be replayed at another), kept across
// restarts of the same data directory.
func TestServerIDIsUniquePerDataDir(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	idA, err := ServerID(a)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ServerID(a)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := ServerID(b)
	if err != nil {
		t.Fatal(err)
	}
	if idA != again {
		t.Errorf("the server ID changed across restarts of one data dir: %q then %q", idA, again)
	}
	if idA == idB {
		t.Errorf("two data dirs share server ID %q", idA)
	}
	for _, id := range []string{idA, idB} {
		if len(id) < 32 || strings.EqualFold(id, "ecsmesh") || strings.ContainsAny(id, " \t\r\n") {
			t.Errorf("server ID %q is not a long random word", id)
		}
	}
	fi, err := os.Stat(filepath.Join(a, ServerIDFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", ServerIDFile, fi.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(b, ServerIDFile), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if id, err := ServerID(b); err == nil {
		t.Errorf("an empty %s gave server ID %q", ServerIDFile, id)
	}
}

func TestEnvFileNeedsAServerID(t *testing.T) {
	c, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	path := filepath.Join(t.TempDir(), "dev.env")
	if err := c.WriteEnvFile(path, EnvFile{AdminURL: "http://a", APIURL: "https://b"}); err == nil {
		t.Fatal("an env file without a server ID was written")
	}
	if err := c.WriteEnvFile(path, EnvFile{AdminURL: "http://a", APIURL: "https://b", ServerID: "dev-1234"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), "\nECSMESH_AWSIAM_SERVER_ID=dev-1234\n") {
		t.Fatalf("env file: %s %v", data, err)
	}
}

// TestVersionsShareTheServiceRole: two versions of one service run with
// the same role (one RoleId: the first task's credentials stay valid) and
// get agent variables of their own in the env file.
func TestVersionsShareTheServiceRole(t *testing.T) {
	c, err := Start(t.Context(), Options{Services: []Service{
		{Name: "backend", Version: "v1", TaskID: "backend-v1", IP: "10.0.0.4"},
		{Name: "backend", Version: "v2", TaskID: "backend-v2", IP: "10.0.0.5"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	role, ok := c.Fake().IAM.Role(DefaultAccount, "ecsmesh-demo-backend")
	if !ok || role.Tags["kuma.io/service"] != "backend" || role.Tags["kuma.io/workload"] != "backend" {
		t.Fatalf("backend role %+v", role)
	}
	if err := c.AddService(Service{Name: "backend", Version: "v3", TaskID: "backend-v3"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Fake().IAM.Role(DefaultAccount, "ecsmesh-demo-backend"); again.RoleID != role.RoleID {
		t.Errorf("adding a version re-created the role: RoleId %s, was %s", again.RoleID, role.RoleID)
	}
	// A second service claiming the role with other tags is refused.
	if err := c.AddService(Service{Name: "backend", Mesh: "other", TaskID: "backend-x"}); err == nil {
		t.Error("a task of another mesh reused backend's role")
	}
	path := filepath.Join(t.TempDir(), "dev.env")
	if err := c.WriteEnvFile(path, EnvFile{AdminURL: "http://a", APIURL: "https://b", ServerID: "dev-1"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"BACKEND_V1_AWS_CONTAINER_CREDENTIALS_FULL_URI=" + c.URL() + CredentialsPrefix + "backend-v1\n",
		"BACKEND_V2_AWS_CONTAINER_CREDENTIALS_FULL_URI=" + c.URL() + CredentialsPrefix + "backend-v2\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("env file lacks %q:\n%s", want, data)
		}
	}
}
