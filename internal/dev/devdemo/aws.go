package devdemo

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/ecsmesh/ecsmesh/internal/dev/devcloud"
)

// awsConfig is the AWS configuration an agent's task sees: its region and
// its task role's container credentials, against the local AWS.
func (d *Demo) awsConfig(agent string) aws.Config {
	prefix := devcloud.EnvPrefix(agent)
	return aws.Config{
		Region:       d.env[prefix+"AWS_REGION"],
		Credentials:  aws.NewCredentialsCache(endpointcreds.New(d.env[prefix+"AWS_CONTAINER_CREDENTIALS_FULL_URI"])),
		BaseEndpoint: aws.String(d.env["ECSMESH_DEV_AWS_URL"]),
	}
}

// RoleTags reads the agent's task role tags with iam:GetRole.
func (d *Demo) RoleTags(ctx context.Context, agent, role string) (string, map[string]string, error) {
	out, err := iam.NewFromConfig(d.awsConfig(agent)).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
	if err != nil {
		return "", nil, fmt.Errorf("devdemo: iam:GetRole %s: %w", role, err)
	}
	tags := map[string]string{}
	for _, t := range out.Role.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return aws.ToString(out.Role.Arn), tags, nil
}

// Records lists the private zone's A and TXT records with the real SDK,
// "name TYPE value" sorted.
func (d *Demo) Records(ctx context.Context) ([]string, error) {
	zone := d.env["ECSMESH_DEV_ROUTE53_ZONE_ID"]
	client := route53.NewFromConfig(d.awsConfig("web"))
	var out []string
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zone)}
	for {
		page, err := client.ListResourceRecordSets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("devdemo: listing zone %s: %w", zone, err)
		}
		for _, r := range page.ResourceRecordSets {
			if r.Type == "SOA" || r.Type == "NS" {
				continue
			}
			var vals []string
			for _, v := range r.ResourceRecords {
				vals = append(vals, aws.ToString(v.Value))
			}
			out = append(out, fmt.Sprintf("%s %s %s", strings.TrimSuffix(aws.ToString(r.Name), "."), r.Type, strings.Join(vals, ",")))
		}
		if !page.IsTruncated {
			break
		}
		in.StartRecordName, in.StartRecordType = page.NextRecordName, page.NextRecordType
	}
	sort.Strings(out)
	return out, nil
}
