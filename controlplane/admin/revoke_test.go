package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/token"
)

// revoker is a Rotator that revokes with a token issuer.
type revoker struct{ *token.Issuer }

func (revoker) RotateCA(context.Context, string) error { return nil }
func (r revoker) RotateSigningKeys(ctx context.Context, mesh string) ([]string, error) {
	return r.RotateKeys(ctx, mesh)
}

type rotateOnly struct{}

func (rotateOnly) RotateCA(context.Context, string) error                      { return nil }
func (rotateOnly) RotateSigningKeys(context.Context, string) ([]string, error) { return nil, nil }

func TestRevokeDataplane(t *testing.T) {
	ctx := context.Background()
	s := memory.New(nil)
	t.Cleanup(func() { s.Close() })
	for _, r := range []store.Record{
		{Key: store.Key{Kind: "Mesh", Name: "default"}, Spec: []byte(`{"type":"Mesh","name":"default"}`)},
		{Key: store.Key{Kind: "Dataplane", Mesh: "default", Name: "web-1"}, Spec: []byte(dp)},
	} {
		if _, err := store.UpsertRecord(ctx, s, r); err != nil {
			t.Fatal(err)
		}
	}
	iss, err := token.New(token.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	withRevoker := httptest.NewServer(Handler(Options{Manager: manager.New(s), Rotator: revoker{iss}}))
	t.Cleanup(withRevoker.Close)
	without := httptest.NewServer(Handler(Options{Manager: manager.New(s), Rotator: rotateOnly{}}))
	t.Cleanup(without.Close)
	post := func(base, path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
		return resp.StatusCode, out
	}
	for _, tc := range []struct {
		name, base, path string
		status           int
		reason           string
	}{
		{"unknown dataplane", withRevoker.URL, "/meshes/default/dataplanes/ghost/revoke", 404, "not_found"},
		{"unknown mesh", withRevoker.URL, "/meshes/other/dataplanes/web-1/revoke", 404, "not_found"},
		{"no revoker", without.URL, "/meshes/default/dataplanes/web-1/revoke", 503, "revocation_unavailable"},
		{"revoked", withRevoker.URL, "/meshes/default/dataplanes/web-1/revoke", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.base, tc.path)
			if status != tc.status || (tc.reason != "" && body["reason"] != tc.reason) {
				t.Fatalf("%d %v, want %d %s", status, body, tc.status, tc.reason)
			}
			if tc.status != 200 {
				if body["title"] == nil {
					t.Fatalf("not a problem: %v", body)
				}
				return
			}
			at, err := token.RevokedAt(ctx, s, "default", "web-1")
			if err != nil || at.IsZero() || body["revokedAt"] != at.Format(time.RFC3339Nano) {
				t.Fatalf("stored revocation %v (%v), answered %v", at, err, body["revokedAt"])
			}
		})
	}
	if at, _ := token.RevokedAt(ctx, s, "default", "ghost"); !at.IsZero() {
		t.Fatal("an unknown dataplane was revoked")
	}
}
