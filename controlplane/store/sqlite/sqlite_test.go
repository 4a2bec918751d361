package sqlite_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/sqlite"
	"github.com/ecsmesh/ecsmesh/controlplane/store/storetest"
)

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	paths := map[*testing.T]string{}
	open := func(t *testing.T, path string) store.Backend {
		t.Helper()
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("opening %s: %v", path, err)
		}
		return s
	}
	storetest.Run(t,
		func(t *testing.T) store.Backend {
			path := filepath.Join(t.TempDir(), "ecsmesh.db")
			mu.Lock()
			paths[t] = path
			mu.Unlock()
			return open(t, path)
		},
		func(t *testing.T) store.Backend {
			mu.Lock()
			path := paths[t]
			mu.Unlock()
			if path == "" {
				t.Fatal("openSecond before open")
			}
			return open(t, path)
		},
		storetest.Capabilities{Persistent: true, CrossInstanceWatch: true})
}
