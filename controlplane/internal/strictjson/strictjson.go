// Package strictjson decodes JSON bodies from outside the control plane
// with no room for a parser mismatch: every object key must be exactly
// (case-sensitively) one of the target struct's JSON names, no key may
// appear twice at any depth, and nothing may follow the value.
//
// encoding/json alone matches keys case-insensitively and lets the last of
// two equal keys win, so {"name":"api-1","NAME":"web-1"} passes a check
// that reads "name" and decodes as web-1. Checking the same bytes the
// decoder uses, with the decoder's own types, closes that gap.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// maxDepth bounds nesting (the bodies this package reads are shallow).
const maxDepth = 32

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// Unmarshal decodes data into v (a pointer) after checking every key of
// every object against v's type. Errors start with "strictjson: " and name
// the offending key by its path.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: Unmarshal needs a non-nil pointer")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := check(dec, rv.Type().Elem(), "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("strictjson: data after the JSON value")
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("strictjson: %w", err)
	}
	return nil
}

// check consumes one JSON value from dec, checking it against t.
func check(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("strictjson: %s: nested too deeply", where(path))
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("strictjson: %s: %w", where(path), err)
	}
	delim, isDelim := tok.(json.Delim)
	if !isDelim {
		return nil // a scalar; its type is checked by the decoder
	}
	switch delim {
	case '{':
		return checkObject(dec, t, path, depth)
	case '[':
		var elem reflect.Type
		if t != nil && t != rawMessageType && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := check(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		return closing(dec, path)
	}
	return fmt.Errorf("strictjson: %s: unexpected %v", where(path), delim)
}

func checkObject(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t == nil || t == rawMessageType || t.Kind() == reflect.Interface:
		// Free-form: only duplicates are checked.
	case t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("strictjson: %s: %w", where(path), err)
		}
		key, _ := tok.(string)
		kp := key
		if path != "" {
			kp = path + "." + key
		}
		if seen[key] {
			return fmt.Errorf("strictjson: %s: key appears twice", kp)
		}
		seen[key] = true
		next := elem
		if fields != nil {
			ft, ok := fields[key]
			if !ok {
				return fmt.Errorf("strictjson: %s: unknown key (keys are case-sensitive: %s)", kp, strings.Join(sortedNames(fields), ", "))
			}
			next = ft
		}
		if err := check(dec, next, kp, depth+1); err != nil {
			return err
		}
	}
	return closing(dec, path)
}

// closing consumes the ']' or '}' ending the current value.
func closing(dec *json.Decoder, path string) error {
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("strictjson: %s: %w", where(path), err)
	}
	return nil
}

// jsonFields maps each JSON name of struct t (embedded structs flattened)
// to its type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func sortedNames(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func where(path string) string {
	if path == "" {
		return "body"
	}
	return path
}
