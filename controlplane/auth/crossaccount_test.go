package auth_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecsmesh/ecsmesh/controlplane/auth"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeaws"
	"github.com/ecsmesh/ecsmesh/internal/test/fakeecs"
)

func TestCrossAccount(t *testing.T) {
	const cpAccount, other, untrusting = "111111111111", "222222222222", "333333333333"
	cloud := fakeaws.New(nil)
	srv := httptest.NewServer(cloud)
	defer srv.Close()
	cloud.IAM.PutRole(cpAccount, "ecsmesh-control-plane", nil)
	own := cloud.IAM.PutRole(cpAccount, "web", nil)
	cloud.IAM.PutRole(other, "ecsmesh-cp-reader", nil)
	if err := cloud.IAM.Trust(other, "ecsmesh-cp-reader", cpAccount); err != nil {
		t.Fatal(err)
	}
	remote := cloud.IAM.PutRole(other, "web", map[string]string{"kuma.io/mesh": "default"})
	cloud.IAM.PutRole(untrusting, "ecsmesh-cp-reader", nil) // trusts nobody outside its account
	cloud.IAM.PutRole(untrusting, "web", nil)
	remoteTask := cloud.ECS.AddTask(fakeecs.Task{Account: other, Region: "us-east-1", Cluster: "prod", TaskID: "0123456789abcdef0123456789abcdef",
		LastStatus: "RUNNING", DesiredStatus: "RUNNING", AvailabilityZone: "us-east-1a", TaskRoleARN: remote.ARN, Family: "web"})
	cred, err := cloud.STS.AssumeRole(cpAccount, "ecsmesh-control-plane", "cp", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: cred, BaseEndpoint: aws.String(srv.URL)}

	tests := []struct {
		name, reader, account string
		wantID                string
		wantNotFound          bool
	}{
		{"own account", "ecsmesh-cp-reader", cpAccount, own.RoleID, false},
		{"another account that trusts the CP", "ecsmesh-cp-reader", other, remote.RoleID, false},
		{"another account without a reader role configured", "", other, "", true},
		{"an account whose reader role does not trust the CP", "ecsmesh-cp-reader", untrusting, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := &auth.Accounts{Config: cfg, ReaderRole: tt.reader}
			role, err := accounts.IAM().GetRole(t.Context(), tt.account, "web")
			switch {
			case tt.wantID != "":
				if err != nil || role.RoleID != tt.wantID {
					t.Fatalf("GetRole = %+v, %v; want RoleId %s", role, err, tt.wantID)
				}
				if tt.account == other {
					task, err := accounts.ECS().DescribeTask(t.Context(), other, "prod", remoteTask.TaskID)
					if err != nil || task.ARN != remoteTask.ARN() || task.RoleARN != remote.ARN {
						t.Fatalf("DescribeTask in the other account = %+v, %v", task, err)
					}
				}
			case tt.wantNotFound:
				if !errors.Is(err, auth.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound (GetRole reads the CP's own account)", err)
				}
				if _, err := accounts.ECS().DescribeTask(t.Context(), other, "prod", remoteTask.TaskID); !errors.Is(err, auth.ErrNotFound) {
					t.Fatalf("DescribeTask: %v, want ErrNotFound (the CP's own account has no such task)", err)
				}
			default:
				if err == nil {
					t.Fatalf("read a role in an account that does not trust the CP: %+v", role)
				}
			}
		})
	}
}
