package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/store"
	"github.com/ecsmesh/ecsmesh/controlplane/store/sqlite"
	"github.com/ecsmesh/ecsmesh/controlplane/store/storetest"
)

// TestConcurrentOpen opens one new file from several goroutines at once:
// they serialize on the database lock and migrate it exactly once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ecsmesh.db")
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer db.Close()
	var applied int
	var mode string
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatalf("counting migrations: %v", err)
	}
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatalf("reading journal mode: %v", err)
	}
	if applied != 1 || mode != "wal" {
		t.Fatalf("schema_migrations rows = %d, journal_mode = %q; want 1 and wal", applied, mode)
	}
}

func TestOpenRejectsMemory(t *testing.T) {
	for _, path := range []string{"", ":memory:"} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			_ = s.Close()
			t.Fatalf("Open(%q): no error", path)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.Bench(b, s)
}

// TestFilesAreOwnerOnly: the database holds every CA and signing key, so
// the file and its -wal/-shm companions are readable by the owner only,
// whatever the umask, and an existing looser file is tightened on Open.
func TestFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "ecsmesh.db")
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if mode := fi.Mode().Perm(); mode != 0o600 {
				t.Errorf("%s: %s has mode %04o, want 0600", when, filepath.Base(p), mode)
			}
		}
	}
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateRecord(t.Context(), s, store.Record{Key: store.Key{Kind: "Mesh", Name: "default"}, Spec: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	check("new file")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A file left world-readable by an older version is tightened.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(t.Context(), store.Key{Kind: "Mesh", Name: "default"}); err != nil {
		t.Fatalf("reopened store: %v", err)
	}
	check("existing 0644 file")
}
