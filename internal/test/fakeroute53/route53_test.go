package fakeroute53_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"

	"github.com/ecsmesh/ecsmesh/internal/test/fakeroute53"
	"github.com/ecsmesh/ecsmesh/internal/test/sigv4check"
)

func client(t *testing.T, fake *fakeroute53.Server) *sdk.Client {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cred := fake.Verifier().Issue(sigv4check.Principal{Account: "111122223333", ARN: "arn:aws:iam::111122223333:user/cp"}, 0)
	return sdk.New(sdk.Options{Region: "us-east-1", Credentials: cred, BaseEndpoint: aws.String(srv.URL), Retryer: aws.NopRetryer{}})
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func a(name, ip string) types.ResourceRecordSet {
	return types.ResourceRecordSet{Name: aws.String(name), Type: types.RRTypeA, TTL: aws.Int64(10), ResourceRecords: []types.ResourceRecord{{Value: aws.String(ip)}}}
}

func change(action types.ChangeAction, rs types.ResourceRecordSet) types.Change {
	return types.Change{Action: action, ResourceRecordSet: &rs}
}

func TestWireProtocol(t *testing.T) {
	ctx := context.Background()
	fake := fakeroute53.New(fakeroute53.Options{})
	zid := fake.CreateZone("mesh.local", true)
	c := client(t, fake)

	hz, err := c.GetHostedZone(ctx, &sdk.GetHostedZoneInput{Id: aws.String(zid)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(hz.HostedZone.Name) != "mesh.local." || !hz.HostedZone.Config.PrivateZone {
		t.Fatalf("zone %+v", hz.HostedZone)
	}
	if _, err := c.GetHostedZone(ctx, &sdk.GetHostedZoneInput{Id: aws.String("ZNOPE")}); code(err) != "NoSuchHostedZone" {
		t.Fatalf("missing zone: %v", err)
	}

	var changes []types.Change
	for i := range 700 {
		changes = append(changes, change(types.ChangeActionCreate, a(fmt.Sprintf("s%03d.mesh.local", i), "127.1.0.2")))
	}
	if _, err := c.ChangeResourceRecordSets(ctx, &sdk.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zid),
		ChangeBatch: &types.ChangeBatch{Changes: changes}}); err != nil {
		t.Fatal(err)
	}
	// pagination
	n, pages := 0, 0
	p := sdk.NewListResourceRecordSetsPaginator(c, &sdk.ListResourceRecordSetsInput{HostedZoneId: aws.String(zid), MaxItems: aws.Int32(300)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.ResourceRecordSets)
		pages++
	}
	if n != 702 || pages != 3 {
		t.Fatalf("listed %d sets in %d pages", n, pages)
	}

	tests := []struct {
		name    string
		changes []types.Change
		code    string
	}{
		{"create existing fails whole batch", []types.Change{change(types.ChangeActionCreate, a("new.mesh.local", "127.1.0.3")), change(types.ChangeActionCreate, a("s000.mesh.local", "127.1.0.2"))}, "InvalidChangeBatch"},
		{"delete missing", []types.Change{change(types.ChangeActionDelete, a("missing.mesh.local", "127.1.0.3"))}, "InvalidChangeBatch"},
		{"delete wrong values", []types.Change{change(types.ChangeActionDelete, a("s000.mesh.local", "127.1.0.9"))}, "InvalidChangeBatch"},
		{"outside zone", []types.Change{change(types.ChangeActionCreate, a("x.example.com", "127.1.0.3"))}, "InvalidChangeBatch"},
		{"too many records", func() []types.Change {
			var cs []types.Change
			for i := range 501 {
				cs = append(cs, change(types.ChangeActionUpsert, a(fmt.Sprintf("u%d.mesh.local", i), "127.1.0.2")))
			}
			return cs
		}(), "InvalidChangeBatch"},
		{"delete ok", []types.Change{change(types.ChangeActionDelete, a("s000.mesh.local", "127.1.0.2"))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fake.Records(zid))
			_, err := c.ChangeResourceRecordSets(ctx, &sdk.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zid), ChangeBatch: &types.ChangeBatch{Changes: tt.changes}})
			if code(err) != tt.code {
				t.Fatalf("got %v, want code %q", err, tt.code)
			}
			var icb *types.InvalidChangeBatch
			if tt.code == "InvalidChangeBatch" && (!errors.As(err, &icb) || len(icb.Messages) == 0) {
				t.Fatalf("want a decoded InvalidChangeBatch with messages, got %#v", err)
			}
			if tt.code != "" && len(fake.Records(zid)) != before {
				t.Fatal("a refused batch changed the zone")
			}
		})
	}
}

func TestThrottlingAndPriorRequest(t *testing.T) {
	ctx := context.Background()
	fake := fakeroute53.New(fakeroute53.Options{})
	zid := fake.CreateZone("mesh.local", true)
	c := client(t, fake)
	fake.SetRateLimit(0.001, 2)
	in := &sdk.ListResourceRecordSetsInput{HostedZoneId: aws.String(zid)}
	for i := range 2 {
		if _, err := c.ListResourceRecordSets(ctx, in); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if _, err := c.ListResourceRecordSets(ctx, in); code(err) != "Throttling" {
		t.Fatalf("want Throttling, got %v", err)
	}
	if fake.Throttled() != 1 || fake.Calls()[fakeroute53.ActionListResourceRecordSets] != 3 {
		t.Fatalf("throttled %d, calls %v", fake.Throttled(), fake.Calls())
	}
	fake.SetRateLimit(0, 0)
	fake.InjectPriorRequestNotComplete(1)
	ci := &sdk.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zid), ChangeBatch: &types.ChangeBatch{Changes: []types.Change{change(types.ChangeActionCreate, a("x.mesh.local", "127.1.0.2"))}}}
	if _, err := c.ChangeResourceRecordSets(ctx, ci); code(err) != "PriorRequestNotComplete" {
		t.Fatalf("want PriorRequestNotComplete, got %v", err)
	}
	out, err := c.ChangeResourceRecordSets(ctx, ci)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := c.GetChange(ctx, &sdk.GetChangeInput{Id: out.ChangeInfo.Id})
	if err != nil || gc.ChangeInfo.Status != types.ChangeStatusInsync {
		t.Fatalf("GetChange = %+v, %v", gc, err)
	}
}

func TestSigV4Checked(t *testing.T) {
	fake := fakeroute53.New(fakeroute53.Options{})
	zid := fake.CreateZone("mesh.local", true)
	srv := httptest.NewServer(fake)
	defer srv.Close()
	bad := sigv4check.Credential{AccessKeyID: "AKIAUNKNOWN000000000", SecretAccessKey: "x"}
	c := sdk.New(sdk.Options{Region: "us-east-1", Credentials: bad, BaseEndpoint: aws.String(srv.URL), Retryer: aws.NopRetryer{}})
	if _, err := c.GetHostedZone(context.Background(), &sdk.GetHostedZoneInput{Id: aws.String(zid)}); code(err) != "InvalidClientTokenId" {
		t.Fatalf("want InvalidClientTokenId, got %v", err)
	}
}

func TestRecordQuota(t *testing.T) {
	ctx := context.Background()
	fake := fakeroute53.New(fakeroute53.Options{})
	zid := fake.CreateZone("mesh.local", true) // SOA and NS: 2 record sets
	c := client(t, fake)
	if err := fake.SetRecordQuota(zid, 4); err != nil {
		t.Fatal(err)
	}
	apply := func(cs ...types.Change) error {
		_, err := c.ChangeResourceRecordSets(ctx, &sdk.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zid), ChangeBatch: &types.ChangeBatch{Changes: cs}})
		return err
	}
	if err := apply(change(types.ChangeActionCreate, a("a.mesh.local", "127.1.0.2")), change(types.ChangeActionCreate, a("b.mesh.local", "127.1.0.3"))); err != nil {
		t.Fatal(err)
	}
	err := apply(change(types.ChangeActionCreate, a("c.mesh.local", "127.1.0.4")))
	var icb *types.InvalidChangeBatch
	if !errors.As(err, &icb) || len(fake.Records(zid)) != 4 {
		t.Fatalf("a create past the quota: %v, zone holds %d", err, len(fake.Records(zid)))
	}
	// A swap that keeps the count is accepted at the quota.
	if err := apply(change(types.ChangeActionDelete, a("a.mesh.local", "127.1.0.2")), change(types.ChangeActionCreate, a("c.mesh.local", "127.1.0.4"))); err != nil {
		t.Fatal(err)
	}
	if err := fake.SetRecordQuota("ZNONE", 1); err == nil {
		t.Fatal("want an error for a missing zone")
	}
}
