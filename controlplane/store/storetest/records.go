package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

func testCRUD(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	k := key("Dataplane", "default", "web-1")
	created := must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(k, `{"a":1}`)))
	if created.Version != 1 || created.Key != k || created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.ModifiedAt) {
		t.Fatalf("created = %+v, want version 1, key %v, CreatedAt == ModifiedAt set", created, k)
	}
	got := must[store.Record](t, "get")(s.Get(ctx, k))
	assertSame(t, "get after create", got, created)

	created.Spec = []byte(`{"a":2}`)
	updated := must[store.Record](t, "update")(store.UpdateRecord(ctx, s, created))
	if updated.Version != 2 || !updated.CreatedAt.Equal(created.CreatedAt) || updated.ModifiedAt.Before(created.ModifiedAt) {
		t.Fatalf("updated = %+v, want version 2 keeping CreatedAt %v", updated, created.CreatedAt)
	}
	assertSame(t, "get after update", must[store.Record](t, "get")(s.Get(ctx, k)), updated)

	upserted := must[store.Record](t, "upsert existing")(store.UpsertRecord(ctx, s, store.Record{Key: k, Spec: []byte(`{"a":3}`), Version: 42}))
	if upserted.Version != 3 {
		t.Fatalf("upsert over version 2 gave version %d, want 3", upserted.Version)
	}
	fresh := must[store.Record](t, "upsert new")(store.UpsertRecord(ctx, s, rec(key("Dataplane", "default", "web-2"), `{}`)))
	if fresh.Version != 1 {
		t.Fatalf("upsert of a new key gave version %d, want 1", fresh.Version)
	}

	deleted := must[[]store.Record](t, "delete")(s.Batch(ctx, []store.Write{{Mode: store.Delete, Record: store.Record{Key: k, Version: 3}}}))
	assertSame(t, "deleted record", deleted[0], upserted)
	_, err := s.Get(ctx, k)
	wantErr(t, "get after delete", err, store.ErrNotFound)
	if err := store.DeleteRecord(ctx, s, fresh.Key, 0); err != nil {
		t.Fatalf("delete at version 0: %v", err)
	}
	again := must[store.Record](t, "create after delete")(store.CreateRecord(ctx, s, rec(k, `{}`)))
	if again.Version < 1 {
		t.Fatalf("re-created version %d", again.Version)
	}
}

func testErrorKinds(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	k := key("Mesh", "", "default")
	absent := key("Mesh", "", "absent")
	r := must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(k, `{}`)))
	stale := r
	r = must[store.Record](t, "update")(store.UpdateRecord(ctx, s, r))
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"get absent", func() error { _, err := s.Get(ctx, absent); return err }, store.ErrNotFound},
		{"create taken", func() error { _, err := store.CreateRecord(ctx, s, rec(k, `{}`)); return err }, store.ErrAlreadyExists},
		{"update absent", func() error { _, err := store.UpdateRecord(ctx, s, rec(absent, `{}`)); return err }, store.ErrNotFound},
		{"update stale", func() error { _, err := store.UpdateRecord(ctx, s, stale); return err }, store.ErrConflict},
		{"update version 0", func() error { _, err := store.UpdateRecord(ctx, s, rec(k, `{}`)); return err }, store.ErrConflict},
		{"delete absent", func() error { return store.DeleteRecord(ctx, s, absent, 0) }, store.ErrNotFound},
		{"delete stale", func() error { return store.DeleteRecord(ctx, s, k, stale.Version) }, store.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.do(), tc.want) })
	}
	if _, err := s.Batch(ctx, []store.Write{{Mode: store.Mode(99), Record: rec(absent, `{}`)}}); err == nil {
		t.Fatal("unknown mode: no error")
	}
	assertSame(t, "record after failed writes", must[store.Record](t, "get")(s.Get(ctx, k)), r)
}

func testSpecRoundTrip(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	specs := []struct {
		name string
		spec []byte
	}{
		{"empty", []byte{}},
		{"whitespace and unicode", []byte("{ \"name\" : \"wéb\u00a0\u2028\",\n\t\"n\": 1.50 }")},
		{"large", bytes.Repeat([]byte(`"0123456789abcdef",`), 8192)},
		{"nul and high bytes", []byte{0, 1, 0xff, 0xfe, '{', '}'}},
	}
	for i, tc := range specs {
		t.Run(tc.name, func(t *testing.T) {
			k := key("Blob", "m", fmt.Sprintf("b%d", i))
			must[store.Record](t, "create")(store.CreateRecord(ctx, s, store.Record{Key: k, Spec: tc.spec}))
			got := must[store.Record](t, "get")(s.Get(ctx, k))
			if !bytes.Equal(got.Spec, tc.spec) {
				t.Fatalf("spec round trip: got %q, want %q", got.Spec, tc.spec)
			}
		})
	}
}

func testList(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	keys := []store.Key{
		key("Dataplane", "b", "z"), key("Dataplane", "a", "y"), key("Dataplane", "b", "a"),
		key("Dataplane", "a", "B"), key("Dataplane", "a", "b"), key("Dataplane", "a", "a-1"),
		key("Mesh", "", "b"), key("Mesh", "", "a"), key("Other", "a", "x"),
	}
	var writes []store.Write
	for _, k := range keys {
		writes = append(writes, store.Write{Mode: store.Create, Record: rec(k, `{"k":"`+k.String()+`"}`)})
	}
	must[[]store.Record](t, "batch")(s.Batch(ctx, writes))
	tests := []struct {
		kind, mesh string
		want       []string
	}{
		{"Dataplane", "", []string{"Dataplane/a/B", "Dataplane/a/a-1", "Dataplane/a/b", "Dataplane/a/y", "Dataplane/b/a", "Dataplane/b/z"}},
		{"Dataplane", "a", []string{"Dataplane/a/B", "Dataplane/a/a-1", "Dataplane/a/b", "Dataplane/a/y"}},
		{"Dataplane", "c", nil},
		{"Mesh", "", []string{"Mesh/a", "Mesh/b"}},
		{"Absent", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.kind+"/"+tc.mesh, func(t *testing.T) {
			rs := must[[]store.Record](t, "list")(s.List(ctx, tc.kind, store.ListOptions{Mesh: tc.mesh}))
			var got []string
			for _, r := range rs {
				got = append(got, r.Key.String())
				if string(r.Spec) != `{"k":"`+r.Key.String()+`"}` || r.Version != 1 {
					t.Errorf("listed %v with spec %s version %d", r.Key, r.Spec, r.Version)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("List(%s, %q) = %v, want %v", tc.kind, tc.mesh, got, tc.want)
			}
		})
	}
}

func testBatchAtomic(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	existing := must[store.Record](t, "create")(store.CreateRecord(ctx, s, rec(key("K", "m", "existing"), `{"v":1}`)))
	events := must[<-chan store.Event](t, "watch")(s.Watch(ctx))
	tests := []struct {
		name   string
		writes []store.Write
		want   error
	}{
		{"update absent in the middle", []store.Write{
			{Mode: store.Create, Record: rec(key("K", "m", "x"), `{}`)},
			{Mode: store.Update, Record: existing},
			{Mode: store.Update, Record: rec(key("K", "m", "absent"), `{}`)},
			{Mode: store.Create, Record: rec(key("K", "m", "y"), `{}`)},
		}, store.ErrNotFound},
		{"create taken last", []store.Write{
			{Mode: store.Create, Record: rec(key("K", "m", "x"), `{}`)},
			{Mode: store.Delete, Record: existing},
			{Mode: store.Create, Record: rec(key("K", "m", "x"), `{}`)},
		}, store.ErrAlreadyExists},
		{"stale update last", []store.Write{
			{Mode: store.Upsert, Record: rec(key("K", "m", "y"), `{}`)},
			{Mode: store.Update, Record: store.Record{Key: existing.Key, Version: 7}},
		}, store.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Batch(ctx, tc.writes)
			wantErr(t, "batch", err, tc.want)
			for _, n := range []string{"x", "y"} {
				_, err := s.Get(ctx, key("K", "m", n))
				wantErr(t, "get "+n+" after failed batch", err, store.ErrNotFound)
			}
			assertSame(t, "untouched record", must[store.Record](t, "get")(s.Get(ctx, existing.Key)), existing)
		})
	}
	sentinel := must[store.Record](t, "sentinel")(store.CreateRecord(ctx, s, rec(key("K", "m", "sentinel"), `{}`)))
	if e := nextEvent(t, events); e.Key != sentinel.Key || e.Op != store.Created {
		t.Fatalf("first event after failed batches = %+v, want the sentinel's creation (failed batches announce nothing)", e)
	}
}

func testBatchSameKey(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	k := key("K", "", "twice")
	out := must[[]store.Record](t, "batch")(s.Batch(ctx, []store.Write{
		{Mode: store.Create, Record: rec(k, `{"v":1}`)},
		{Mode: store.Update, Record: store.Record{Key: k, Version: 1, Spec: []byte(`{"v":2}`)}},
		{Mode: store.Upsert, Record: rec(key("K", "", "other"), `{}`)},
		{Mode: store.Delete, Record: store.Record{Key: key("K", "", "other"), Version: 1}},
	}))
	if len(out) != 4 || out[0].Version != 1 || out[1].Version != 2 || out[3].Key.Name != "other" {
		t.Fatalf("batch returned %+v", out)
	}
	got := must[store.Record](t, "get")(s.Get(ctx, k))
	if got.Version != 2 || string(got.Spec) != `{"v":2}` {
		t.Fatalf("get = %+v, want version 2 with the second spec", got)
	}
	_, err := s.Get(ctx, key("K", "", "other"))
	wantErr(t, "get deleted in the batch", err, store.ErrNotFound)
}

func testExpiry(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	k := key("LoginSignature", "", "sig")
	past := store.Record{Key: k, Spec: []byte(`{"old":true}`), ExpiresAt: time.Now().Add(-time.Minute)}
	must[store.Record](t, "create expired")(store.CreateRecord(ctx, s, past))
	_, err := s.Get(ctx, k)
	wantErr(t, "get expired", err, store.ErrNotFound)
	if rs := must[[]store.Record](t, "list")(s.List(ctx, k.Kind, store.ListOptions{})); len(rs) != 0 {
		t.Fatalf("list shows expired records: %+v", rs)
	}
	_, err = store.UpdateRecord(ctx, s, store.Record{Key: k, Version: 1})
	wantErr(t, "update expired", err, store.ErrNotFound)
	wantErr(t, "delete expired", store.DeleteRecord(ctx, s, k, 0), store.ErrNotFound)

	future := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	r := must[store.Record](t, "create over expired")(store.CreateRecord(ctx, s, store.Record{Key: k, Spec: []byte(`{}`), ExpiresAt: future}))
	got := must[store.Record](t, "get live")(s.Get(ctx, k))
	if !got.ExpiresAt.Equal(future) || got.Version != r.Version {
		t.Fatalf("get = %+v, want ExpiresAt %v version %d", got, future, r.Version)
	}
	_, err = store.CreateRecord(ctx, s, rec(k, `{}`))
	wantErr(t, "create over live", err, store.ErrAlreadyExists)
	r.ExpiresAt = time.Time{}
	r = must[store.Record](t, "clear expiry")(store.UpdateRecord(ctx, s, r))
	if got := must[store.Record](t, "get")(s.Get(ctx, k)); !got.ExpiresAt.IsZero() {
		t.Fatalf("ExpiresAt after clearing = %v", got.ExpiresAt)
	}
}

func testExpiryElapses(t *testing.T, h *harness) {
	s, ctx := h.first(t), ctxFor(t)
	k := key("LoginSignature", "", "short")
	must[store.Record](t, "create")(store.CreateRecord(ctx, s, store.Record{Key: k, Spec: []byte(`{}`), ExpiresAt: time.Now().Add(300 * time.Millisecond)}))
	waitFor(t, "record expires", func() bool {
		_, err := s.Get(ctx, k)
		return err != nil
	})
	_, err := s.Get(ctx, k)
	wantErr(t, "get after expiry", err, store.ErrNotFound)
	must[store.Record](t, "create after expiry")(store.CreateRecord(ctx, s, rec(k, `{}`)))
}

// assertSame compares what a store must return identically on every read.
func assertSame(t *testing.T, what string, got, want store.Record) {
	t.Helper()
	if got.Key != want.Key || got.Version != want.Version || !bytes.Equal(got.Spec, want.Spec) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ModifiedAt.Equal(want.ModifiedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}
