package token

import (
	"context"
	"testing"
	"time"
)

// TestRevokeDataplane: a revocation refuses the tokens of its name issued
// up to its instant (to the second), not later ones nor other names, and
// its record outlives every token it refuses.
func TestRevokeDataplane(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	_, before := f.issue(t, "default", "web-1")
	f.clock.Advance(300 * time.Millisecond)
	at, err := f.iss.RevokeDataplane(ctx, "default", "web-1")
	if err != nil {
		t.Fatal(err)
	}
	_, sameSecond := f.issue(t, "default", "web-1")
	f.clock.Advance(time.Second)
	_, after := f.issue(t, "default", "web-1")
	got, err := RevokedAt(ctx, f.store, "default", "web-1")
	if err != nil || !got.Equal(at) {
		t.Fatalf("RevokedAt = %v, %v; want %v", got, err, at)
	}
	for _, tc := range []struct {
		name string
		c    DataplaneClaims
		want bool
	}{
		{"issued before", before, true},
		{"issued in the same second", sameSecond, true},
		{"issued a second later", after, false},
	} {
		if Revoked(tc.c, got) != tc.want {
			t.Errorf("%s: revoked = %v, want %v", tc.name, !tc.want, tc.want)
		}
	}
	if other, err := RevokedAt(ctx, f.store, "default", "web-2"); err != nil || !other.IsZero() {
		t.Fatalf("another name: %v %v", other, err)
	}
	rec, err := f.store.Get(ctx, RevocationKey("default", "web-1"))
	if err != nil || rec.ExpiresAt.Before(before.ExpiresAt) || rec.ExpiresAt.Before(at.Add(MaxTokenTTL)) {
		t.Fatalf("revocation record expires at %v (%v), before the tokens it refuses", rec.ExpiresAt, err)
	}
}
