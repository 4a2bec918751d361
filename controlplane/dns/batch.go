package dns

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// Route53 limits of one ChangeResourceRecordSets request.
const (
	// MaxBatchRecords is the most ResourceRecord elements per request
	// (an UPSERT counts twice).
	MaxBatchRecords = 1000
	// MaxBatchValueChars is the most characters of all Value elements per
	// request (an UPSERT counts twice).
	MaxBatchValueChars = 32000
)

// Limits bound one change request.
type Limits struct {
	Records    int
	ValueChars int
}

// DefaultLimits are Route53's.
var DefaultLimits = Limits{Records: MaxBatchRecords, ValueChars: MaxBatchValueChars}

// Cost returns what a change counts against the limits, as AWS counts it.
func Cost(c types.Change) (records, chars int) {
	rs := c.ResourceRecordSet
	if rs == nil {
		return 0, 0
	}
	if rs.AliasTarget != nil {
		records = 1
	}
	for _, r := range rs.ResourceRecords {
		records++
		chars += len(aws.ToString(r.Value))
	}
	if c.Action == types.ChangeActionUpsert {
		records, chars = records*2, chars*2
	}
	return records, chars
}

// Batches packs units into as few requests as the limits allow, in order,
// never splitting a unit.
func Batches(units []Unit, lim Limits) ([][]types.Change, error) {
	var out [][]types.Change
	var cur []types.Change
	recs, chars := 0, 0
	for _, u := range units {
		ur, uc := 0, 0
		for _, c := range u.Changes {
			r, ch := Cost(c)
			ur, uc = ur+r, uc+ch
		}
		if ur > lim.Records || uc > lim.ValueChars {
			return nil, fmt.Errorf("dns: changes for %s exceed one request's limits (%d records, %d characters)", u.Name, ur, uc)
		}
		if recs+ur > lim.Records || chars+uc > lim.ValueChars {
			out = append(out, cur)
			cur, recs, chars = nil, 0, 0
		}
		cur = append(cur, u.Changes...)
		recs, chars = recs+ur, chars+uc
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// LowerBound is the fewest change requests that can write n hostnames
// into a zone that holds none of ecsmesh's records: n A records and one
// domain claim, at most 1,000 records a request.
func LowerBound(n int) int { return (n + 1 + MaxBatchRecords - 1) / MaxBatchRecords }
