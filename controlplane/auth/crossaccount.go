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

	mu        sync.Mutex
	own       string // the CP's account, once known
	arn       string // the CP's ARN, for the partition
	byAccount map[string]accountClients
}

// IAM returns the IAM of the caller's account.
func (a *Accounts) IAM() IAM { return accountsIAM{a} }

// ECS returns the ECS of the caller's account.
func (a *Accounts) ECS() ECS { return accountsECS{a} }

type accountsIAM struct{ a *Accounts }

// GetRole implements IAM.
func (i accountsIAM) GetRole(ctx context.Context, account, name string) (Role, error) {
	c, err := i.a.clients(ctx, account)
	if err != nil {
		return Role{}, err
	}
	return c.iam.GetRole(ctx, account, name)
}

type accountsECS struct{ a *Accounts }

// DescribeTask implements ECS.
func (e accountsECS) DescribeTask(ctx context.Context, account, cluster, id string) (Task, error) {
	c, err := e.a.clients(ctx, account)
	if err != nil {
		return Task{}, err
	}
	return c.ecs.DescribeTask(ctx, account, cluster, id)
}

// accountClients are the clients whose credentials read one account.
type accountClients struct {
	iam IAMClient
	ecs ECSClient
}

// clients returns (building once) the clients that read account.
func (a *Accounts) clients(ctx context.Context, account string) (accountClients, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.byAccount[account]; ok {
		return c, nil
	}
	cfg := a.Config
	if a.ReaderRole != "" {
		if a.own == "" {
			out, err := sts.NewFromConfig(a.Config).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return accountClients{}, classify("sts:GetCallerIdentity of the control plane", err, "")
			}
			a.own, a.arn = aws.ToString(out.Account), aws.ToString(out.Arn)
		}
		if account != a.own {
			partition := "aws"
			if parts := strings.SplitN(a.arn, ":", 3); len(parts) == 3 && parts[1] != "" {
				partition = parts[1]
			}
			roleARN := fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, a.ReaderRole)
			cfg = a.Config.Copy()
			cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.Config), roleARN,
				func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "ecsmesh-cp" }))
		}
	}
	c := accountClients{iam: IAMClient{Client: iam.NewFromConfig(cfg)}, ecs: ECSClient{Client: ecs.NewFromConfig(cfg)}}
	if a.byAccount == nil {
		a.byAccount = map[string]accountClients{}
	}
	a.byAccount[account] = c
	return c, nil
}
