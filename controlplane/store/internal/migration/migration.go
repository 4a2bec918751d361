// Package migration reads a SQL store's embedded schema migrations: files
// migrations/NNNN_description.sql, applied once each in version order.
package migration

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load returns the migrations of files ordered by version. Errors are
// prefixed with store (the package name of the caller).
func Load(store string, files fs.FS) ([]Migration, error) {
	names, err := fs.Glob(files, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("%s: listing migrations: %w", store, err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		prefix, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: migration %q: name must start with a positive version and '_'", store, base)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("%s: migrations %q and %q share version %d", store, other, base, v)
		}
		seen[v] = base
		b, err := fs.ReadFile(files, n)
		if err != nil {
			return nil, fmt.Errorf("%s: reading migration %q: %w", store, base, err)
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}
