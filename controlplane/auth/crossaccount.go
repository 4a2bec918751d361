package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Accounts gives the control plane AWS clients for whichever allowed
// account a caller belongs to: the CP's own credentials in the CP's
// account, and in any other account a reader role assumed there (a role of
// that account that trusts the CP and allows iam:GetRole and, with
// ECSMESH_AWSIAM_VERIFY_ECS_TASK, ecs:DescribeTasks and
// ecs:DescribeTaskDefinition). iam:GetRole and ecs:DescribeTasks only read
// the credentials' own account, so without ReaderRole a role or task in
// another account is not found.
type Accounts struct {
	// Config is the CP's AWS configuration.
	Config aws.Config
	// ReaderRole is the role name assumed in other accounts
	// (ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME); empty: own account only.
	ReaderRole string

	mu      sync.Mutex
	own     string // the CP's account, once known
	arn     string // the CP's ARN, for the partition
	configs map[string]aws.Config
	iam     map[string]IAMClient
	ecs     map[string]ECSClient
}

// IAM returns the IAM of the caller's account.
func (a *Accounts) IAM() IAM { return accountsIAM{a} }

// ECS returns the ECS of the caller's account.
func (a *Accounts) ECS() ECS { return accountsECS{a} }

type accountsIAM struct{ a *Accounts }

// GetRole implements IAM.
func (i accountsIAM) GetRole(ctx context.Context, account, name string) (Role, error) {
	cfg, err := i.a.config(ctx, account)
	if err != nil {
		return Role{}, err
	}
	i.a.mu.Lock()
	c, ok := i.a.iam[account]
	if !ok {
		c = IAMClient{Client: iam.NewFromConfig(cfg)}
		i.a.iam[account] = c
	}
	i.a.mu.Unlock()
	return c.GetRole(ctx, account, name)
}

type accountsECS struct{ a *Accounts }

// DescribeTask implements ECS.
func (e accountsECS) DescribeTask(ctx context.Context, account, cluster, id string) (Task, error) {
	cfg, err := e.a.config(ctx, account)
	if err != nil {
		return Task{}, err
	}
	e.a.mu.Lock()
	c, ok := e.a.ecs[account]
	if !ok {
		c = ECSClient{Client: ecs.NewFromConfig(cfg)}
		e.a.ecs[account] = c
	}
	e.a.mu.Unlock()
	return c.DescribeTask(ctx, account, cluster, id)
}

// config returns the configuration whose credentials read account.
func (a *Accounts) config(ctx context.Context, account string) (aws.Config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.configs == nil {
		a.configs, a.iam, a.ecs = map[string]aws.Config{}, map[string]IAMClient{}, map[string]ECSClient{}
	}
	if cfg, ok := a.configs[account]; ok {
		return cfg, nil
	}
	if a.ReaderRole == "" {
		a.configs[account] = a.Config
		return a.Config, nil
	}
	if a.own == "" {
		out, err := sts.NewFromConfig(a.Config).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return aws.Config{}, classify("sts:GetCallerIdentity of the control plane", err, "")
		}
		a.own, a.arn = aws.ToString(out.Account), aws.ToString(out.Arn)
	}
	cfg := a.Config.Copy()
	if account != a.own {
		partition := "aws"
		if parts := strings.SplitN(a.arn, ":", 3); len(parts) == 3 && parts[1] != "" {
			partition = parts[1]
		}
		roleARN := fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, a.ReaderRole)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.Config), roleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "ecsmesh-cp" }))
	}
	a.configs[account] = cfg
	return cfg, nil
}
