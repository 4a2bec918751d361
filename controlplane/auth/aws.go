package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// IAMClient implements IAM with the SDK, using the CP's credentials. It
// answers for the account of those credentials (a role of another
// allowed account is not found there, or has another RoleId, and is
// refused). The Verifier does the retrying, so the SDK's is off.
type IAMClient struct {
	Client *iam.Client
}

// GetRole implements IAM.
func (c IAMClient) GetRole(ctx context.Context, account, name string) (Role, error) {
	out, err := c.Client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)}, func(o *iam.Options) { o.Retryer = aws.NopRetryer{} })
	if err != nil {
		return Role{}, classify("iam:GetRole "+name, err, "NoSuchEntity")
	}
	r := out.Role
	if r == nil || r.RoleId == nil || r.Arn == nil {
		return Role{}, fmt.Errorf("auth: iam:GetRole %s: %w: empty answer", name, ErrUnavailable)
	}
	// iam:GetRole names no account: it reads the credentials' own account.
	// A role of the same name in the wrong account is not the caller's.
	if parts := strings.SplitN(*r.Arn, ":", 6); account != "" && (len(parts) != 6 || parts[4] != account) {
		return Role{}, fmt.Errorf("auth: iam:GetRole %s: %w: the control plane's credentials read account %s, not %s (set ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME to read roles in other accounts)",
			name, ErrNotFound, arnAccount(*r.Arn), account)
	}
	role := Role{ARN: *r.Arn, RoleID: *r.RoleId, Name: aws.ToString(r.RoleName), Tags: map[string]string{}}
	for _, t := range r.Tags {
		role.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return role, nil
}

// ECSClient implements ECS with the SDK, using the CP's credentials.
type ECSClient struct {
	Client *ecs.Client
}

// DescribeTask implements ECS: DescribeTasks, then DescribeTaskDefinition
// when the task does not override its role.
func (c ECSClient) DescribeTask(ctx context.Context, _, cluster, id string) (Task, error) {
	noRetry := func(o *ecs.Options) { o.Retryer = aws.NopRetryer{} }
	out, err := c.Client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{id}}, noRetry)
	if err != nil {
		return Task{}, classify("ecs:DescribeTasks "+id, err, "ClusterNotFoundException")
	}
	if len(out.Tasks) != 1 {
		return Task{}, fmt.Errorf("auth: ecs:DescribeTasks %s in %s: %w", id, cluster, ErrNotFound)
	}
	t := out.Tasks[0]
	task := Task{ARN: aws.ToString(t.TaskArn), ClusterARN: aws.ToString(t.ClusterArn), LastStatus: aws.ToString(t.LastStatus), AvailabilityZone: aws.ToString(t.AvailabilityZone)}
	if t.Overrides != nil && t.Overrides.TaskRoleArn != nil {
		task.RoleARN = *t.Overrides.TaskRoleArn
		return task, nil
	}
	td, err := c.Client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: t.TaskDefinitionArn}, noRetry)
	if err != nil {
		return Task{}, classify("ecs:DescribeTaskDefinition", err, "")
	}
	if td.TaskDefinition != nil {
		task.RoleARN = aws.ToString(td.TaskDefinition.TaskRoleArn)
	}
	return task, nil
}

// classify wraps SDK errors with ErrNotFound (notFoundCode) or
// ErrUnavailable (no answer, throttling, 5xx).
func classify(doing string, err error, notFoundCode string) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if notFoundCode != "" && code == notFoundCode {
			return fmt.Errorf("auth: %s: %w: %w", doing, ErrNotFound, err)
		}
		if throttlingCodes[code] || ae.ErrorFault() == smithy.FaultServer {
			return fmt.Errorf("auth: %s: %w: %w", doing, ErrUnavailable, err)
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == http.StatusTooManyRequests) {
		return fmt.Errorf("auth: %s: %w: %w", doing, ErrUnavailable, err)
	}
	if ae == nil {
		// No AWS answer at all: network, timeout.
		return fmt.Errorf("auth: %s: %w: %w", doing, ErrUnavailable, err)
	}
	return fmt.Errorf("auth: %s: %w", doing, err)
}

func arnAccount(arn string) string {
	if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 {
		return parts[4]
	}
	return "?"
}
