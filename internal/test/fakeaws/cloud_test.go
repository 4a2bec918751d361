package fakeaws_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ecsmesh/ecsmesh/internal/test/awsfault"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeaws"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecs"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

func sdkConfig(t *testing.T, url string, creds aws.CredentialsProvider) aws.Config {
	t.Helper()
	for _, v := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_ECS"} {
		t.Setenv(v, url)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(creds), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCloudWithRealSDK(t *testing.T) {
	c := fakeaws.New(nil)
	srv := httptest.NewServer(c)
	defer srv.Close()
	const acct = "111122223333"
	role := c.IAM.PutRole(acct, "web", map[string]string{"kuma.io/mesh": "default", "kuma.io/type": "dataplane"})
	task, err := c.STS.AssumeRole(acct, "web", "task1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	id, err := awssts.NewFromConfig(sdkConfig(t, srv.URL, task)).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if *id.Arn != "arn:aws:sts::111122223333:assumed-role/web/task1" || *id.UserId != role.RoleID+":task1" || *id.Account != acct {
		t.Fatalf("identity = %s %s %s", *id.Arn, *id.UserId, *id.Account)
	}

	cp := c.Verifier.Issue(sigv4check.Principal{Account: acct, ARN: "arn:aws:iam::111122223333:user/cp", UserID: "AIDACP"}, 0)
	cfg := sdkConfig(t, srv.URL, cp)
	iamc := awsiam.NewFromConfig(cfg)
	got, err := iamc.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("web")})
	if err != nil {
		t.Fatalf("GetRole: %v", err)
	}
	if *got.Role.RoleId != role.RoleID || len(got.Role.Tags) != 2 || *got.Role.Tags[0].Key != "kuma.io/mesh" {
		t.Fatalf("role = %+v", got.Role)
	}
	_, err = iamc.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("nope")})
	assertCode(t, err, "NoSuchEntity")

	c.IAM.Faults().Inject(awsfault.Fault{Kind: awsfault.Throttle, Times: 1})
	_, err = iamc.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("web")})
	assertCode(t, err, "Throttling")

	tk := c.ECS.AddTask(fakeecs.Task{Account: acct, Region: "us-east-1", Cluster: "prod", TaskID: "task1", AvailabilityZone: "us-east-1a", TaskRoleARN: role.ARN})
	ecsc := awsecs.NewFromConfig(cfg)
	out, err := ecsc.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: []string{"task1"}})
	if err != nil {
		t.Fatalf("DescribeTasks: %v", err)
	}
	if len(out.Tasks) != 1 || *out.Tasks[0].TaskArn != tk.ARN() || *out.Tasks[0].LastStatus != "RUNNING" {
		t.Fatalf("tasks = %+v", out.Tasks)
	}
	td, err := ecsc.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{TaskDefinition: out.Tasks[0].TaskDefinitionArn})
	if err != nil || *td.TaskDefinition.TaskRoleArn != role.ARN {
		t.Fatalf("DescribeTaskDefinition: %v", err)
	}
	c.ECS.Faults().Inject(awsfault.Fault{Kind: awsfault.Throttle, Times: 1})
	_, err = ecsc.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: []string{"task1"}})
	assertCode(t, err, "ThrottlingException")

	// A signature with a wrong secret is refused with the real code.
	bad := task
	bad.SecretAccessKey = "wrong"
	_, err = awssts.NewFromConfig(sdkConfig(t, srv.URL, bad)).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	assertCode(t, err, "SignatureDoesNotMatch")
}

func TestExpiredToken(t *testing.T) {
	now := time.Now()
	c := fakeaws.New(func() time.Time { return now })
	srv := httptest.NewServer(c)
	defer srv.Close()
	c.IAM.PutRole("111122223333", "web", nil)
	cred, _ := c.STS.AssumeRole("111122223333", "web", "s", time.Minute)
	now = now.Add(2 * time.Minute)
	cred.Expires = now.Add(time.Hour) // the client believes it is still valid
	_, err := awssts.NewFromConfig(sdkConfig(t, srv.URL, cred)).GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
	assertCode(t, err, "ExpiredToken")
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}
