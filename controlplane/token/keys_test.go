package token

import (
	"context"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

// TestRetiredDataplaneKeyWindowFollowsMeshTTL: a retired dataplane-token
// key verifies for the mesh's token TTL plus skew, not a fixed 24 h 05 m,
// so rotating the keys ends every token of the old key within one TTL.
// Lowering the TTL and rotating again also cuts short keys retired under
// the longer TTL.
func TestRetiredDataplaneKeyWindowFollowsMeshTTL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// ttlAtFirst is the mesh's TTL when the key is retired; the TTL
		// is 10 min at the second rotation (if any).
		ttlAtFirst  time.Duration
		rotateTwice bool
	}{
		{"retired under a 10 min TTL", 10 * time.Minute, false},
		{"retired under 24 h, rotated again under 10 min", MaxTokenTTL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			setTTL := func(d time.Duration) {
				ttl := resource.Duration{Duration: d}
				putMesh(t, f.store, &resource.Mesh{Meta: resource.Meta{Name: "default"}, Tokens: &resource.MeshTokens{TTL: &ttl}})
			}
			setTTL(tc.ttlAtFirst)
			f.issue(t, "default", "web-1")
			oldKID := f.currentKey(t, "default", KeyDataplaneToken).kid
			oldKey := mustOldKey(t, f, oldKID)
			if _, err := f.iss.signingKeys(ctx, "default", KeyJWTSVID); err != nil {
				t.Fatal(err)
			}
			svidKID := f.currentKey(t, "default", KeyJWTSVID).kid
			retiredAt := f.clock.Now()
			if _, err := f.iss.RotateKeys(ctx, "default"); err != nil {
				t.Fatal(err)
			}
			if tc.rotateTwice {
				setTTL(10 * time.Minute)
				f.clock.Advance(time.Minute)
				if _, err := f.iss.RotateKeys(ctx, "default"); err != nil {
					t.Fatal(err)
				}
			}
			forge := func() string {
				return sign(t, jose.ES256, oldKey, oldKID, DataplaneTokenType, goodClaims(f.clock.Now()))
			}
			end := retiredAt.Add(10*time.Minute + retireSkew)
			f.clock.Advance(end.Sub(f.clock.Now()) - time.Second)
			if _, err := f.iss.VerifyDataplaneToken(ctx, forge()); err != nil {
				t.Fatalf("a retired key within the mesh's TTL + skew: %v", err)
			}
			f.clock.Advance(2 * time.Second)
			if _, err := f.iss.VerifyDataplaneToken(ctx, forge()); err == nil {
				t.Fatal("a retired dataplane-token key verified beyond the mesh's token TTL + skew")
			}
			// JWT-SVIDs may live up to MaxTokenTTL: their key stays published.
			if !jwksKIDs(t, f.iss)[svidKID] {
				t.Fatal("the retired JWT-SVID key left the JWKS within MaxTokenTTL")
			}
		})
	}
}
