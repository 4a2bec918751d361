package proxyhost

import (
	"reflect"
	"testing"
)

func TestHeaderMap(t *testing.T) {
	base := [][2]string{{":authority", "a"}, {"X-Dup", "1"}, {"x-dup", "2"}, {"keep", "k"}}
	tests := []struct {
		name string
		op   func(m *headerMap)
		want [][2]string
	}{
		{"load lower-cases", func(*headerMap) {}, [][2]string{{":authority", "a"}, {"x-dup", "1"}, {"x-dup", "2"}, {"keep", "k"}}},
		{"replace first, drop others", func(m *headerMap) { m.replace([]byte("x-dup"), []byte("9")) },
			[][2]string{{":authority", "a"}, {"x-dup", "9"}, {"keep", "k"}}},
		{"replace missing appends", func(m *headerMap) { m.replace([]byte("new"), []byte("n")) },
			[][2]string{{":authority", "a"}, {"x-dup", "1"}, {"x-dup", "2"}, {"keep", "k"}, {"new", "n"}}},
		{"remove all", func(m *headerMap) { m.remove([]byte("x-dup")) }, [][2]string{{":authority", "a"}, {"keep", "k"}}},
		{"add appends", func(m *headerMap) { m.add([]byte("keep"), []byte("k2")) },
			[][2]string{{":authority", "a"}, {"x-dup", "1"}, {"x-dup", "2"}, {"keep", "k"}, {"keep", "k2"}}},
		{"remove then reuse", func(m *headerMap) {
			m.remove([]byte(":authority"))
			m.add([]byte("z"), []byte("zz"))
		}, [][2]string{{"x-dup", "1"}, {"x-dup", "2"}, {"keep", "k"}, {"z", "zz"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m headerMap
			m.load([][2]string{{"old", "x"}, {"older", "y"}, {"o", "1"}, {"p", "2"}, {"q", "3"}})
			m.load(base)
			tc.op(&m)
			if got := m.pairs(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			buf := make([]byte, m.size())
			m.serialize(buf)
			var back headerMap
			if !back.deserialize(buf) || !reflect.DeepEqual(back.pairs(), tc.want) {
				t.Fatalf("serialization round trip: %q", back.pairs())
			}
		})
	}
}

func TestDeserializeRejectsTruncated(t *testing.T) {
	var m headerMap
	m.load([][2]string{{"a", "b"}})
	buf := make([]byte, m.size())
	m.serialize(buf)
	for n := 1; n < len(buf); n++ {
		if m.deserialize(buf[:n]) {
			t.Errorf("accepted %d of %d bytes", n, len(buf))
		}
	}
}
