package ca

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRootExpiryMetric(t *testing.T) {
	f := newFixture(t, nil)
	if n := testutil.CollectAndCount(f.ca.Collector()); n != 0 {
		t.Fatalf("%d series before any root exists", n)
	}
	b, err := f.ca.Bundle(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	// One mesh has a root: exactly one series, its expiry.
	if got := testutil.ToFloat64(f.ca.Collector()); got != float64(b.Roots[0].NotAfter.Unix()) {
		t.Errorf("expiry %v, want %d", got, b.Roots[0].NotAfter.Unix())
	}
}
