package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// KindRevocation is the store kind of dataplane token revocations: one
// record per Dataplane (mesh, name) holding the instant at or before which
// every dataplane token issued for that name is refused. CP-internal: never
// served by the resources API. A record expires once every token it
// refuses has expired anyway.
const KindRevocation = "DataplaneRevocation"

// revocationDoc is the JSON document of a KindRevocation record.
type revocationDoc struct {
	RevokedAt time.Time `json:"revokedAt"`
}

// RevokeDataplane records that every dataplane token of mesh/name issued
// at or before now is refused (by the xDS server of every replica, which
// also closes the streams they opened, and by health sync), and returns
// that instant. Tokens carry their issue time to the second, so a token
// issued in the same second is refused too. It does not stop the owner
// role from logging in again and getting a new token: remove the role's
// tags for that. Revoking again moves the instant forward.
func (i *Issuer) RevokeDataplane(ctx context.Context, mesh, name string) (time.Time, error) {
	if mesh == "" || name == "" {
		return time.Time{}, errors.New("token: revoking dataplane tokens: mesh and name are required")
	}
	now := i.now().UTC()
	spec, err := json.Marshal(revocationDoc{RevokedAt: now})
	if err != nil {
		return time.Time{}, fmt.Errorf("token: encoding revocation of %s/%s: %w", mesh, name, err)
	}
	_, err = store.UpsertRecord(ctx, i.store, store.Record{
		Key: RevocationKey(mesh, name), Spec: spec,
		// Tokens issued before now expire by now + MaxTokenTTL.
		ExpiresAt: now.Add(MaxTokenTTL + Leeway),
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("token: storing revocation of %s/%s: %w", mesh, name, err)
	}
	i.log.Info("token: revoked dataplane tokens", "mesh", mesh, "dataplane", name, "revokedAt", now)
	return now, nil
}

// RevocationKey is the store key of mesh/name's revocation record.
func RevocationKey(mesh, name string) store.Key {
	return store.Key{Kind: KindRevocation, Mesh: mesh, Name: name}
}

// ParseRevocation returns the instant a KindRevocation record revokes.
func ParseRevocation(rec store.Record) (time.Time, error) {
	var d revocationDoc
	if err := json.Unmarshal(rec.Spec, &d); err != nil {
		return time.Time{}, fmt.Errorf("token: decoding %s: %w", rec.Key, err)
	}
	if d.RevokedAt.IsZero() {
		return time.Time{}, fmt.Errorf("token: %s has no revokedAt", rec.Key)
	}
	return d.RevokedAt, nil
}

// RevokedAt reads mesh/name's revocation from s: the zero time when its
// tokens are not revoked.
func RevokedAt(ctx context.Context, s store.Store, mesh, name string) (time.Time, error) {
	rec, err := s.Get(ctx, RevocationKey(mesh, name))
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("token: reading the revocation of %s/%s: %w", mesh, name, err)
	}
	return ParseRevocation(rec)
}

// Revoked reports whether a token with claims c is refused by a
// revocation at revokedAt (zero: none).
func Revoked(c DataplaneClaims, revokedAt time.Time) bool {
	return !revokedAt.IsZero() && !c.IssuedAt.After(revokedAt)
}
