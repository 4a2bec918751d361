package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/resource"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

var taskIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// verifyTask runs check 13: the session names an ECS task (ECS names task
// role sessions by task ID) that runs with this role, in this account and
// signing region.
func (v *Verifier) verifyTask(ctx context.Context, caller assumedRole, region string, role Role, dp *resource.Dataplane, mesh string) (Task, error) {
	if !taskIDRE.MatchString(caller.Session) {
		return Task{}, forbidden(ReasonECSTaskNotFound, "the role session "+caller.Session+" does not name an ECS task")
	}
	clusters, err := v.candidateClusters(ctx, dp, mesh)
	if err != nil {
		return Task{}, err
	}
	for _, cluster := range clusters {
		task, err := retryAWS(ctx, v, func(ctx context.Context) (Task, error) {
			return v.ecs.DescribeTask(ctx, caller.Account, cluster, caller.Session)
		})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			v.log.WarnContext(ctx, "ecs:DescribeTasks failed", "cluster", cluster, "task", caller.Session, "error", err)
			return Task{}, unavailable(ReasonECSUnavailable, "ecs:DescribeTasks failed; retry later")
		}
		wantPrefix := fmt.Sprintf("arn:%s:ecs:%s:%s:task/", caller.Partition, region, caller.Account)
		if !strings.HasPrefix(task.ARN, wantPrefix) || !strings.HasSuffix(task.ARN, "/"+caller.Session) {
			return Task{}, forbidden(ReasonECSTaskNotFound, "the ECS task is not in the caller's account and region")
		}
		if task.LastStatus != "RUNNING" && task.LastStatus != "PENDING" {
			return Task{}, forbidden(ReasonECSTaskNotRunning, "ECS task "+caller.Session+" is "+task.LastStatus)
		}
		if task.RoleARN != role.ARN {
			return Task{}, forbidden(ReasonECSTaskRole, "ECS task "+caller.Session+" does not run with role "+role.ARN)
		}
		return task, nil
	}
	return Task{}, forbidden(ReasonECSTaskNotFound, fmt.Sprintf("no ECS task %s in cluster(s) %s", caller.Session, strings.Join(clusters, ", ")))
}

func (v *Verifier) candidateClusters(ctx context.Context, dp *resource.Dataplane, mesh string) ([]string, error) {
	if c := dp.Labels[resource.LabelECSCluster]; c != "" {
		return []string{c}, nil
	}
	pols, err := v.policies(ctx, mesh)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range pols {
		for _, r := range p.Spec.Allow {
			for _, w := range r.Workloads {
				if w.AWS.ECS == nil {
					continue
				}
				for _, c := range w.AWS.ECS.Clusters {
					if !seen[c] && len(out) < 10 {
						seen[c] = true
						out = append(out, c)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		out = []string{"default"}
	}
	return out, nil
}

// policies returns the OnboardingPolicies that apply to mesh: its own and
// the global ones whose onboardTo names it (or any mesh).
func (v *Verifier) policies(ctx context.Context, mesh string) ([]*resource.OnboardingPolicy, error) {
	recs, err := v.store.List(ctx, resource.KindOnboardingPolicy, store.ListOptions{})
	if err != nil {
		return nil, v.internal(ctx, "listing onboarding policies", err)
	}
	var out []*resource.OnboardingPolicy
	for _, r := range recs {
		if r.Mesh != "" && r.Mesh != mesh {
			continue
		}
		o, err := resource.Unmarshal(resource.KindOnboardingPolicy, r.Spec)
		if err != nil {
			return nil, v.internal(ctx, "decoding onboarding policy", err)
		}
		p := o.(*resource.OnboardingPolicy)
		if p.Mesh == "" && !globalAppliesTo(p, mesh) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func globalAppliesTo(p *resource.OnboardingPolicy, mesh string) bool {
	for _, r := range p.Spec.Allow {
		for _, t := range r.OnboardTo {
			if t.Mesh == "" || t.Mesh == mesh {
				return true
			}
		}
	}
	return false
}

// checkOnboarding runs check 14 against the mesh's policies.
func (v *Verifier) checkOnboarding(mesh string, pols []*resource.OnboardingPolicy, ident Identity, dp *resource.Dataplane) error {
	if len(pols) == 0 {
		return nil
	}
	needsECS := false
	for _, p := range pols {
		for _, r := range p.Spec.Allow {
			if !targetsAllow(p, r.OnboardTo, mesh, dp) {
				continue
			}
			for _, w := range r.Workloads {
				ok, unknown := v.workloadMatches(w.AWS, ident)
				if ok {
					return nil
				}
				needsECS = needsECS || unknown
			}
		}
	}
	if needsECS {
		return forbidden(ReasonOnboardingNeedsECSCheck, "an OnboardingPolicy of mesh "+mesh+" restricts regions, zones or ECS clusters, which the control plane can only check with ECSMESH_AWSIAM_VERIFY_ECS_TASK=true")
	}
	return forbidden(ReasonOnboardingDenied, fmt.Sprintf("no OnboardingPolicy allows role %s (account %s, region %s) to onboard to mesh %s as %s", ident.RoleName, ident.Account, ident.Region, mesh, strings.Join(dp.Services(), ",")))
}

// workloadMatches reports whether w matches; unknown is true when it could
// match but needs the ECS task's region, zone or cluster, which were not
// verified. The region of a login is the SigV4 signing region, which the
// caller picks; only the verified task's ARN proves where it runs.
func (v *Verifier) workloadMatches(w resource.AWSWorkload, id Identity) (ok, unknown bool) {
	if !anyOf(w.Partitions, id.Partition) || !anyOf(w.Accounts, id.Account) {
		return false, false
	}
	if w.ECS != nil && !anyOf(w.ECS.IAMRoleNames, id.RoleName) {
		return false, false
	}
	needRegion := len(w.Regions) > 0
	needZone := len(w.Zones) > 0
	needCluster := w.ECS != nil && len(w.ECS.Clusters) > 0
	if (needRegion || needZone || needCluster) && !v.verifyECS {
		return false, true
	}
	if needRegion && !anyOf(w.Regions, id.Region) {
		return false, false
	}
	if needZone && !anyOf(w.Zones, id.Zone) {
		return false, false
	}
	if needCluster && !clusterMatches(w.ECS.Clusters, id.Cluster) {
		return false, false
	}
	return true, false
}

func clusterMatches(allowed []string, clusterARN string) bool {
	name := clusterARN[strings.LastIndex(clusterARN, "/")+1:]
	for _, c := range allowed {
		if c == clusterARN || c == name {
			return true
		}
	}
	return false
}

func targetsAllow(p *resource.OnboardingPolicy, targets []resource.OnboardTarget, mesh string, dp *resource.Dataplane) bool {
	for _, t := range targets {
		tm := t.Mesh
		if tm == "" {
			tm = p.Mesh
		}
		if tm != "" && tm != mesh {
			continue
		}
		if len(t.Services) > 0 {
			all := true
			for _, s := range dp.Services() {
				all = all && anyOf(t.Services, s)
			}
			if !all {
				continue
			}
		}
		if t.WorkloadSelector != nil && !t.WorkloadSelector.Matches(dp.Labels) {
			continue
		}
		return true
	}
	return false
}

// anyOf: an empty list means any.
func anyOf(list []string, v string) bool {
	return len(list) == 0 || contains(list, v)
}
