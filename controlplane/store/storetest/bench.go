package storetest

import (
	"fmt"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

// Bench measures the common operations on s: a 10-write upsert batch and a
// Get of an existing record.
func Bench(b *testing.B, s store.Backend) {
	ctx := b.Context()
	spec := []byte(`{"networking":{"address":"10.0.1.23","inbound":[{"port":15000,"servicePort":8080}]}}`)
	b.Run("BatchUpsert10", func(b *testing.B) {
		writes := make([]store.Write, 10)
		for i := range writes {
			writes[i] = store.Write{Mode: store.Upsert, Record: store.Record{Key: key("Dataplane", "bench", fmt.Sprintf("dp-%d", i)), Spec: spec}}
		}
		for b.Loop() {
			if _, err := s.Batch(ctx, writes); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		k := key("Dataplane", "bench", "get")
		if _, err := store.UpsertRecord(ctx, s, store.Record{Key: k, Spec: spec}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	})
}
