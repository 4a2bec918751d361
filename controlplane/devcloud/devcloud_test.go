package devcloud

import (
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
