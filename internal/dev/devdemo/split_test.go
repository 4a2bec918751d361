package devdemo

import (
	"slices"
	"testing"
	"time"
)

// checkSplit asserts the split step of the end-to-end run: the backend
// dataplanes carry their version tags, web's stand-in holds both subset
// clusters with exactly their task's endpoint, the delivered route splits
// 90/10 with MeshRetry's and MeshTimeout's settings, and 1,000 requests
// land 900 ± 50 on v1.
func checkSplit(t *testing.T, res *Result) {
	t.Helper()
	s := res.Split
	if s == nil || s.Route == nil {
		t.Fatalf("no split observed: %+v", s)
	}
	for c, want := range map[string]string{BackendV1: "127.0.0.4:15000", BackendV2: "127.0.0.5:15000"} {
		if got := s.Endpoints[c]; !slices.Equal(got, []string{want}) {
			t.Errorf("web's endpoints of %s = %v, want [%s] (only that version's task)", c, got, want)
		}
	}
	if got := res.Received["web"].Endpoints["backend"]; len(got) != 2 {
		t.Errorf("web's endpoints of backend = %v, want both tasks", got)
	}
	ws := s.Route.GetRoute().GetWeightedClusters().GetClusters()
	if len(ws) != 2 || ws[0].GetName() != BackendV1 || ws[0].GetWeight().GetValue() != 90 || ws[1].GetName() != BackendV2 || ws[1].GetWeight().GetValue() != 10 {
		t.Errorf("delivered weighted_clusters %v, want %s 90 and %s 10", ws, BackendV1, BackendV2)
	}
	rp := s.Route.GetRoute().GetRetryPolicy()
	if rp.GetRetryOn() != "5xx,connect-failure" || rp.GetNumRetries().GetValue() != 3 || rp.GetPerTryTimeout().AsDuration() != 500*time.Millisecond ||
		rp.GetRetryBackOff().GetBaseInterval().AsDuration() != 50*time.Millisecond || rp.GetRetryBackOff().GetMaxInterval().AsDuration() != 500*time.Millisecond {
		t.Errorf("delivered retry_policy %v, want MeshRetry's 3 retries on 5xx,connect-failure, 500ms per try, 50ms..500ms backoff", rp)
	}
	if got := s.Route.GetRoute().GetTimeout().AsDuration(); got != 2*time.Second {
		t.Errorf("delivered route timeout %s, want MeshTimeout's 2s", got)
	}
	v1, v2 := s.Counts[BackendV1], s.Counts[BackendV2]
	if v1+v2 != SplitRequests || len(s.Counts) != 2 {
		t.Errorf("split counts %v: every one of %d requests must reach a backend subset", s.Counts, SplitRequests)
	}
	if v1 < 850 || v1 > 950 {
		t.Errorf("%s got %d of %d requests, want 900 ± 50", BackendV1, v1, SplitRequests)
	}
}
