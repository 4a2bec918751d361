package memory_test

import (
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
	"github.com/ecsmesh/ecsmesh/controlplane/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Backend { return memory.New(nil) }, nil, storetest.Capabilities{})
}

func BenchmarkStore(b *testing.B) { storetest.Bench(b, memory.New(nil)) }
