package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

type version struct {
	Version string `json:"version,omitempty"`
}

type inner struct {
	Agent version `json:"agent"`
}

type body struct {
	Mesh    string            `json:"mesh"`
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags,omitempty"`
	List    []version         `json:"list,omitempty"`
	Version inner             `json:"version"`
	Ptr     *version          `json:"ptr,omitempty"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
}

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{name: "valid", in: `{"mesh":"default","name":"web-1","tags":{"a":"b"},"list":[{"version":"1"}],"version":{"agent":{"version":"2"}},"ptr":{"version":"3"},"raw":{"x":[1,{"y":2}]}}`},
		{name: "case-variant key", in: `{"mesh":"default","name":"api-1","NAME":"web-1"}`, err: "NAME: unknown key"},
		{name: "case-variant only", in: `{"Mesh":"default"}`, err: "Mesh: unknown key"},
		{name: "duplicate key", in: `{"name":"api-1","name":"web-1"}`, err: "name: key appears twice"},
		{name: "unknown key", in: `{"mesh":"default","admin":true}`, err: "admin: unknown key"},
		{name: "nested case-variant", in: `{"version":{"agent":{"Version":"x"}}}`, err: "version.agent.Version: unknown key"},
		{name: "nested in a list", in: `{"list":[{"version":"1"},{"version":"1","version":"2"}]}`, err: "list[1].version: key appears twice"},
		{name: "duplicate map key", in: `{"tags":{"a":"1","a":"2"}}`, err: "tags.a: key appears twice"},
		{name: "duplicate inside raw", in: `{"raw":{"x":1,"x":2}}`, err: "raw.x: key appears twice"},
		{name: "pointer field case-variant", in: `{"ptr":{"VERSION":"3"}}`, err: "ptr.VERSION: unknown key"},
		{name: "trailing data", in: `{"mesh":"default"} {"name":"web-1"}`, err: "data after"},
		{name: "trailing garbage", in: `{"mesh":"default"}x`, err: "strictjson"},
		{name: "not an object", in: `"web-1"`, err: "strictjson"},
		{name: "wrong type", in: `{"mesh":1}`, err: "strictjson"},
		{name: "too deep", in: `{"raw":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, err: "nested too deeply"},
		{name: "truncated", in: `{"mesh":"default"`, err: "strictjson"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b body
			err := Unmarshal([]byte(tt.in), &b)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if b.Name != "web-1" || b.Version.Agent.Version != "2" || b.Ptr.Version != "3" {
					t.Fatalf("decoded %+v", b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestUnmarshalNeedsPointer(t *testing.T) {
	if err := Unmarshal([]byte(`{}`), body{}); err == nil {
		t.Fatal("a non-pointer was accepted")
	}
}

// FuzzUnmarshal: whatever Unmarshal accepts, encoding/json decodes to the
// same value, and re-encoding it is accepted too (no parser mismatch).
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"mesh":"default","name":"web-1"}`, `{"name":"a","NAME":"b"}`, `{"tags":{"a":"b"},"list":[{"version":"1"}]}`, `{"raw":{"x":[1]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a body
		if Unmarshal(data, &a) != nil {
			return
		}
		var b body
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		if a.Name != b.Name || a.Mesh != b.Mesh {
			t.Fatalf("decodings differ: %+v vs %+v", a, b)
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var c body
		if err := Unmarshal(out, &c); err != nil {
			t.Fatalf("re-encoding refused: %v: %s", err, out)
		}
	})
}
