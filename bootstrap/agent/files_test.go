package agent

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteAtomicReaderSeesWholeFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	values := []string{strings.Repeat("a", 4096), strings.Repeat("b", 8192), strings.Repeat("c", 1)}
	if err := writeAtomic(p, []byte(values[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	bad := ""
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(p)
			if err != nil {
				bad = err.Error()
				return
			}
			ok := false
			for _, v := range values {
				ok = ok || string(b) == v
			}
			if !ok {
				bad = "partial content of length " + string(rune('0'+len(b)%10))
				return
			}
		}
	}()
	for i := range 300 {
		if err := writeAtomic(p, []byte(values[i%len(values)]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if bad != "" {
		t.Fatal(bad)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".token.*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
