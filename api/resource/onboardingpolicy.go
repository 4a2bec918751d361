package resource

import (
	"regexp"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

var (
	partitionRE = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	zoneRE      = regexp.MustCompile(`^([a-z]{2}(-[a-z]+)+-[0-9]+[a-z]|[a-z]{3,4}[0-9]-az[0-9]+)$`)
	clusterRE   = regexp.MustCompile(`^([A-Za-z0-9_-]{1,255}|arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255})$`)
	roleNameRE  = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// OnboardingPolicy says which AWS workloads may join which meshes and
// services. When any policy applies to a mesh, a login must be allowed by
// one of them (the last check of the IAM login). It may be global (no mesh: onboardTo names
// meshes) or belong to a mesh (onboardTo[].mesh then defaults to it).
type OnboardingPolicy struct {
	Meta
	Spec OnboardingPolicySpec `json:"spec"`
}

// OnboardingPolicySpec is the body of an OnboardingPolicy.
type OnboardingPolicySpec struct {
	Allow []OnboardingRule `json:"allow"`
}

// OnboardingRule allows Workloads to onboard to OnboardTo.
type OnboardingRule struct {
	Workloads []WorkloadMatch `json:"workloads"`
	OnboardTo []OnboardTarget `json:"onboardTo"`
}

// WorkloadMatch matches where a workload runs. Empty lists mean "any".
type WorkloadMatch struct {
	AWS AWSWorkload `json:"aws"`
}

// AWSWorkload matches an AWS identity. An absent ECS means "not
// ECS-restricted".
type AWSWorkload struct {
	Partitions []string     `json:"partitions,omitempty"`
	Accounts   []string     `json:"accounts,omitempty"`
	Regions    []string     `json:"regions,omitempty"`
	Zones      []string     `json:"zones,omitempty"`
	ECS        *ECSWorkload `json:"ecs,omitempty"`
}

// ECSWorkload matches ECS clusters and task role names.
type ECSWorkload struct {
	Clusters     []string `json:"clusters,omitempty"`
	IAMRoleNames []string `json:"iamRoleNames,omitempty"`
}

// OnboardTarget is where matching workloads may go.
type OnboardTarget struct {
	// Mesh defaults to the policy's mesh; for a global policy, empty means any.
	Mesh string `json:"mesh,omitempty"`
	// Services that may be served; empty means any.
	Services []string `json:"services,omitempty"`
	// WorkloadSelector restricts the Dataplane's labels.
	WorkloadSelector *LabelSelector `json:"workloadSelector,omitempty"`
}

// Validate implements Object.
func (o *OnboardingPolicy) Validate() *validation.Error {
	verr := &validation.Error{}
	validateMeta(&o.Meta, ScopeEither, verr)
	if o.Meta.Mesh != "" && !ValidMeshName(o.Meta.Mesh) {
		verr.Add(validation.Root().Field("mesh"), "must be a DNS label")
	}
	sp := validation.Root().Field("spec").Field("allow")
	if len(o.Spec.Allow) == 0 {
		verr.Add(sp, "must have at least one rule")
	}
	for i, r := range o.Spec.Allow {
		rp := sp.Index(i)
		if len(r.Workloads) == 0 {
			verr.Add(rp.Field("workloads"), "must have at least one entry (use `aws: {}` for any AWS workload)")
		}
		for j, w := range r.Workloads {
			ap := rp.Field("workloads").Index(j).Field("aws")
			each(ap.Field("partitions"), w.AWS.Partitions, partitionRE, "must be an AWS partition such as aws, aws-cn or aws-us-gov", verr)
			each(ap.Field("accounts"), w.AWS.Accounts, accountRE, "must be a 12-digit AWS account ID", verr)
			each(ap.Field("regions"), w.AWS.Regions, regionRE, "must be an AWS region such as us-east-1", verr)
			each(ap.Field("zones"), w.AWS.Zones, zoneRE, "must be an availability zone name (us-east-1a) or ID (use1-az1)", verr)
			if e := w.AWS.ECS; e != nil {
				each(ap.Field("ecs").Field("clusters"), e.Clusters, clusterRE, "must be an ECS cluster name or ARN", verr)
				each(ap.Field("ecs").Field("iamRoleNames"), e.IAMRoleNames, roleNameRE, "must be an IAM role name (not an ARN)", verr)
			}
		}
		if len(r.OnboardTo) == 0 {
			verr.Add(rp.Field("onboardTo"), "must have at least one entry")
		}
		for j, t := range r.OnboardTo {
			tp := rp.Field("onboardTo").Index(j)
			if t.Mesh != "" {
				if !ValidMeshName(t.Mesh) {
					verr.Add(tp.Field("mesh"), "must be a mesh name")
				} else if o.Meta.Mesh != "" && t.Mesh != o.Meta.Mesh {
					verr.Add(tp.Field("mesh"), "must equal the policy's mesh "+o.Meta.Mesh+" (or write a global policy without mesh)")
				}
			}
			for k, s := range t.Services {
				if !ValidServiceName(s) {
					verr.Add(tp.Field("services").Index(k), "must be a service name")
				}
			}
			if t.WorkloadSelector != nil {
				validateLabels(tp.Field("workloadSelector").Field("matchLabels"), t.WorkloadSelector.MatchLabels, verr)
			}
		}
	}
	return verr
}

func each(p validation.Path, values []string, re *regexp.Regexp, msg string, verr *validation.Error) {
	for i, v := range values {
		if !re.MatchString(v) {
			verr.Add(p.Index(i), msg+", got "+quote(v))
		}
	}
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + s + `"`
}
