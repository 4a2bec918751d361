package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr string
	}{
		{"ordered by version, not name", fstest.MapFS{"migrations/0010_b.sql": file("B"), "migrations/0002_a.sql": file("A")}, []int{2, 10}, ""},
		{"other files ignored", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/README": file("x")}, []int{1}, ""},
		{"no version", fstest.MapFS{"migrations/init.sql": file("A")}, nil, `test: migration "init.sql": name must start with a positive version`},
		{"version zero", fstest.MapFS{"migrations/0000_a.sql": file("A")}, nil, "positive version"},
		{"duplicate version", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/1_b.sql": file("B")}, nil, "share version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Load("test", tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("versions %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("versions %v, want %v", got, tt.want)
				}
			}
		})
	}
}
