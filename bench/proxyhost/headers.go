package proxyhost

import (
	"bytes"
	"encoding/binary"
)

// headerMap is a header map whose entries keep their byte buffers across
// resets, so steady-state requests copy headers without allocating.
type headerMap struct {
	n       int
	entries []headerEntry
}

type headerEntry struct {
	name, value []byte
}

// reset empties the map, keeping its buffers.
func (m *headerMap) reset() { m.n = 0 }

// load replaces the content with pairs (names lower-cased).
func (m *headerMap) load(pairs [][2]string) {
	m.n = 0
	for _, kv := range pairs {
		e := m.next()
		e.name = appendLower(e.name[:0], kv[0])
		e.value = append(e.value[:0], kv[1]...)
	}
}

// next appends an entry slot and returns it (its buffers may hold old bytes).
func (m *headerMap) next() *headerEntry {
	if m.n == len(m.entries) {
		m.entries = append(m.entries, headerEntry{})
	}
	m.n++
	return &m.entries[m.n-1]
}

// pairs returns a copy of the content.
func (m *headerMap) pairs() [][2]string {
	out := make([][2]string, m.n)
	for i := range m.n {
		out[i] = [2]string{string(m.entries[i].name), string(m.entries[i].value)}
	}
	return out
}

// index returns the position of the first entry named name (lower-case), or -1.
func (m *headerMap) index(name []byte) int {
	for i := range m.n {
		if bytes.Equal(m.entries[i].name, name) {
			return i
		}
	}
	return -1
}

// get returns the first value of name.
func (m *headerMap) get(name []byte) ([]byte, bool) {
	if i := m.index(name); i >= 0 {
		return m.entries[i].value, true
	}
	return nil, false
}

// add appends another value of name.
func (m *headerMap) add(name, value []byte) {
	e := m.next()
	e.name = append(e.name[:0], name...)
	e.value = append(e.value[:0], value...)
}

// replace sets the first value of name and removes its other values, or
// appends it.
func (m *headerMap) replace(name, value []byte) {
	i := m.index(name)
	if i < 0 {
		m.add(name, value)
		return
	}
	m.entries[i].value = append(m.entries[i].value[:0], value...)
	m.removeFrom(i+1, name)
}

// remove removes every value of name.
func (m *headerMap) remove(name []byte) { m.removeFrom(0, name) }

func (m *headerMap) removeFrom(start int, name []byte) {
	for i := start; i < m.n; {
		if !bytes.Equal(m.entries[i].name, name) {
			i++
			continue
		}
		// Rotate the removed entry to the end so its buffers stay reusable.
		e := m.entries[i]
		copy(m.entries[i:m.n], m.entries[i+1:m.n])
		m.entries[m.n-1] = e
		m.n--
	}
}

// size is the length of the proxy-wasm serialization.
func (m *headerMap) size() int {
	n := 4
	for i := range m.n {
		n += 10 + len(m.entries[i].name) + len(m.entries[i].value)
	}
	return n
}

// serialize writes the proxy-wasm map encoding into dst (len(dst) == size()):
// the pair count, then each name and value length, then each name and value
// followed by a NUL, all little-endian uint32.
func (m *headerMap) serialize(dst []byte) {
	binary.LittleEndian.PutUint32(dst, uint32(m.n))
	p := 4
	for i := range m.n {
		binary.LittleEndian.PutUint32(dst[p:], uint32(len(m.entries[i].name)))
		binary.LittleEndian.PutUint32(dst[p+4:], uint32(len(m.entries[i].value)))
		p += 8
	}
	for i := range m.n {
		p += copy(dst[p:], m.entries[i].name)
		dst[p] = 0
		p++
		p += copy(dst[p:], m.entries[i].value)
		dst[p] = 0
		p++
	}
}

// deserialize replaces the content with the proxy-wasm map encoding in src.
func (m *headerMap) deserialize(src []byte) bool {
	m.n = 0
	if len(src) < 4 {
		return len(src) == 0
	}
	count := int(binary.LittleEndian.Uint32(src))
	if count > (len(src)-4)/10 {
		return false
	}
	sizes := 4
	data := 4 + 8*count
	for range count {
		ks := int(binary.LittleEndian.Uint32(src[sizes:]))
		vs := int(binary.LittleEndian.Uint32(src[sizes+4:]))
		sizes += 8
		if ks < 0 || vs < 0 || data+ks+vs+2 > len(src) {
			return false
		}
		e := m.next()
		e.name = appendLowerBytes(e.name[:0], src[data:data+ks])
		data += ks + 1
		e.value = append(e.value[:0], src[data:data+vs]...)
		data += vs + 1
	}
	return true
}

// decodeMap returns the pairs of a proxy-wasm map encoding (for local replies).
func decodeMap(src []byte) [][2]string {
	var m headerMap
	if !m.deserialize(src) {
		return nil
	}
	return m.pairs()
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, lower(s[i]))
	}
	return dst
}

func appendLowerBytes(dst, s []byte) []byte {
	for _, c := range s {
		dst = append(dst, lower(c))
	}
	return dst
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
