package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// CrossAccountIAM reads roles in whichever allowed account a caller
// belongs to: with the CP's own credentials in the CP's account, and in any
// other account by assuming ReaderRole there (a role of that account that
// trusts the CP and may call iam:GetRole). iam:GetRole only reads roles of
// the caller's own account, so without ReaderRole a role in another account
// is not found.
type CrossAccountIAM struct {
	// Config is the CP's AWS configuration.
	Config aws.Config
	// ReaderRole is the role name assumed in other accounts
	// (ECSMESH_AWSIAM_CROSS_ACCOUNT_ROLE_NAME); empty: own account only.
	ReaderRole string

	mu      sync.Mutex
	own     string // the CP's account, once known
	arn     string // the CP's ARN, for the partition
	clients map[string]IAMClient
}

// GetRole implements IAM.
func (c *CrossAccountIAM) GetRole(ctx context.Context, account, name string) (Role, error) {
	client, err := c.client(ctx, account)
	if err != nil {
		return Role{}, err
	}
	return client.GetRole(ctx, account, name)
}

func (c *CrossAccountIAM) client(ctx context.Context, account string) (IAMClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[account]; ok {
		return cl, nil
	}
	if c.clients == nil {
		c.clients = map[string]IAMClient{}
	}
	if c.ReaderRole == "" {
		cl := IAMClient{Client: iam.NewFromConfig(c.Config)}
		c.clients[account] = cl
		return cl, nil
	}
	if c.own == "" {
		out, err := sts.NewFromConfig(c.Config).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return IAMClient{}, classify("sts:GetCallerIdentity of the control plane", err, "")
		}
		c.own, c.arn = aws.ToString(out.Account), aws.ToString(out.Arn)
	}
	cfg := c.Config.Copy()
	if account != c.own {
		partition := "aws"
		if parts := strings.SplitN(c.arn, ":", 3); len(parts) == 3 && parts[1] != "" {
			partition = parts[1]
		}
		roleARN := fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, c.ReaderRole)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(c.Config), roleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "ecsmesh-cp" }))
	}
	cl := IAMClient{Client: iam.NewFromConfig(cfg)}
	c.clients[account] = cl
	return cl, nil
}
