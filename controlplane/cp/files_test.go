package cp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDataDirRefusedWhenOthersMayWrite: whoever may write the data
// directory may replace the store (every private key) or the CA file
// agents trust, so the CP refuses to start on such a directory.
func TestDataDirRefusedWhenOthersMayWrite(t *testing.T) {
	for _, mode := range []os.FileMode{0o770, 0o777, os.ModeSticky | 0o777, 0o702} {
		t.Run(fmt.Sprintf("%04o", mode.Perm()), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, map[string]string{"ECSMESH_DATA_DIR": dir})
			srv, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				srv.store.Close()
				t.Fatalf("the CP opened a store in a data directory of mode %v", mode)
			}
			for _, want := range []string{"ECSMESH_DATA_DIR", dir, "chmod go-w " + dir} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, SQLiteFile)); err == nil {
				t.Errorf("the store file was created in the refused directory")
			}
		})
	}
}

// TestDataDirAndStoreFilesAreOwnerOnly: a new data directory is 0700 and
// the SQLite files 0600 whatever the umask; the CA file agents read is
// public.
func TestDataDirAndStoreFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "data")
	r := start(t, testConfig(t, map[string]string{"ECSMESH_DATA_DIR": dir}))
	if status, body := r.do(t, "POST", "/apply", meshAndDataplane); status != 200 {
		t.Fatalf("apply: %d %s", status, body)
	}
	want := map[string]os.FileMode{
		dir:                                   0o700,
		filepath.Join(dir, SQLiteFile):        0o600,
		filepath.Join(dir, SQLiteFile+"-wal"): 0o600,
		filepath.Join(dir, SQLiteFile+"-shm"): 0o600,
		filepath.Join(dir, CACertFile):        0o644,
	}
	for p, mode := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %04o, want %04o", p, got, mode)
		}
	}
	// An existing directory that only others may read is accepted.
	r.stop()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start(t, testConfig(t, map[string]string{"ECSMESH_DATA_DIR": dir}))
}
