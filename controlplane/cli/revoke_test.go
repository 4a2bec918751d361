package cli

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/admin"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// revoker is the admin API's Rotator with revocation, over a token issuer.
type revoker struct{ *token.Issuer }

func (revoker) RotateCA(context.Context, string) error { return nil }
func (r revoker) RotateSigningKeys(ctx context.Context, mesh string) ([]string, error) {
	return r.RotateKeys(ctx, mesh)
}

func TestRevokeDataplane(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	defer st.Close()
	for _, r := range []store.Record{
		{Key: store.Key{Kind: "Mesh", Name: "default"}, Spec: []byte(`{"type":"Mesh","name":"default"}`)},
		{Key: store.Key{Kind: "Dataplane", Mesh: "default", Name: "web-1"}, Spec: []byte(`{"type":"Dataplane","mesh":"default","name":"web-1","networking":{"address":"10.0.0.1","inbound":[{"port":15000,"tags":{"kuma.io/service":"web"}}]}}`)},
	} {
		if _, err := store.UpsertRecord(ctx, st, r); err != nil {
			t.Fatal(err)
		}
	}
	iss, err := token.New(token.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(admin.Handler(admin.Options{Manager: manager.New(st), Rotator: revoker{iss}}))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"not a dataplane", []string{"revoke", "role", "default/web-1"}, "only dataplane tokens", ""},
		{"no slash", []string{"revoke", "dataplane", "web-1"}, "MESH/NAME", ""},
		{"empty name", []string{"revoke", "dataplane", "default/"}, "MESH/NAME", ""},
		{"unknown dataplane", []string{"revoke", "dataplane", "default/ghost"}, "(not_found)", ""},
		{"revoked", []string{"revoke", "dataplane", "default/web-1"}, "", "remove the role's tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := run(t, srv.URL, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("%v: %s", err, out)
			}
			at, err := token.RevokedAt(ctx, st, "default", "web-1")
			if err != nil || at.IsZero() || !strings.Contains(out, at.Format("2006-01-02T15:04:05")) {
				t.Fatalf("stored revocation %v (%v); printed %s", at, err, out)
			}
		})
	}
}
