package resource

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// unknownFields walks the input against the Go type and returns a warning
// per ignored Kuma field. Every other problem it finds becomes a violation
// with the field's full path: an unknown field (most likely a typo), a Kuma
// field ecsmesh refuses (a blank field tagged `refused:"name" why:"..."`), or a
// value of the wrong JSON type (a string for a number, -1 for a count).
func unknownFields(t reflect.Type, v any, path string, wk walkKind, verr *validation.Error) (warns []string, bad bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil, false // null: the field is absent
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// Leaf types with their own JSON form (Duration, Number): their
		// UnmarshalJSON says what is wrong.
		b, _ := json.Marshal(v)
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
			verr.Add(validation.Root().Field(path), err.Error())
			return nil, true
		}
		return nil, false
	}
	if msg := typeMismatch(t, v); msg != "" {
		verr.Add(validation.Root().Field(path), msg)
		return nil, true
	}
	switch t.Kind() {
	case reflect.Struct:
		m := v.(map[string]any)
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			p := joinPath(path, k)
			f, known := fields[k]
			switch {
			case known && f.unsupported != "":
				verr.Add(validation.Root().Field(p), "not supported by ecsmesh: "+f.unsupported)
			case known:
				w, bad := unknownFields(f.typ, m[k], p, wk, verr)
				warns = append(warns, w...)
				if bad {
					delete(m, k)
				}
			default:
				if why, ok := wk.ignored[stripIndexes(p)]; ok {
					warns = append(warns, fmt.Sprintf("%s: ignored (%s)", p, why))
				} else {
					verr.Add(validation.Root().Field(p), "unknown field; check its spelling against "+wk.docs)
				}
			}
		}
	case reflect.Slice:
		l := v.([]any)
		for i, e := range l {
			w, bad := unknownFields(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i), wk, verr)
			warns = append(warns, w...)
			if bad {
				l[i] = nil
			}
		}
	case reflect.Map:
		m := v.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			w, bad := unknownFields(t.Elem(), m[k], path+"["+fmt.Sprintf("%q", k)+"]", wk, verr)
			warns = append(warns, w...)
			if bad {
				delete(m, k)
			}
		}
	}
	sort.Strings(warns)
	return warns, false
}

// walkKind is what the walk needs of the kind decoded.
type walkKind struct {
	// docs is the page an unknown-field message sends the reader to.
	docs string
	// ignored are the Kuma fields accepted with a warning.
	ignored map[string]string
}

// walkKindOf returns the walk's view of obj's kind: policies (and
// MeshTrafficPermission) ignore no field (every unknown one is an error)
// and are documented in docs/policies.md.
func walkKindOf(obj Object) walkKind {
	switch obj.(type) {
	case Policy, *MeshTrafficPermission:
		return walkKind{docs: "docs/policies.md"}
	}
	return walkKind{docs: "docs/reference.md#resources", ignored: ignoredKumaFields}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// typeMismatch says why v (decoded from JSON) cannot be stored in a t, or
// returns "".
func typeMismatch(t reflect.Type, v any) string {
	got := jsonValueKind(v)
	want := jsonKind(t)
	switch t.Kind() {
	case reflect.Bool:
		if _, ok := v.(bool); ok {
			return ""
		}
	case reflect.String:
		if _, ok := v.(string); ok {
			return ""
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); ok {
			return ""
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, ok := v.(float64)
		if !ok {
			break
		}
		lo, hi := intRange(t)
		switch {
		case f != math.Trunc(f):
			return fmt.Sprintf("must be a whole number, got %v", f)
		case f < lo || f > hi:
			return fmt.Sprintf("must be a whole number from %.0f to %.0f, got %v", lo, hi, f)
		}
		return ""
	case reflect.Slice:
		if _, ok := v.([]any); ok {
			return ""
		}
	case reflect.Map, reflect.Struct:
		if _, ok := v.(map[string]any); ok {
			return ""
		}
	default:
		return ""
	}
	return fmt.Sprintf("must be a %s, got a %s", want, got)
}

func intRange(t reflect.Type) (lo, hi float64) {
	bits := t.Bits()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return 0, math.Exp2(float64(bits)) - 1
	}
	return -math.Exp2(float64(bits - 1)), math.Exp2(float64(bits-1)) - 1
}

func jsonValueKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// field is what the walk knows of a struct field.
type field struct {
	typ reflect.Type
	// unsupported, when set, is why ecsmesh refuses this Kuma field.
	unsupported string
}

// unsupported marks a Kuma field ecsmesh refuses: a blank field
//
//	_ unsupported `refused:"sectionName" why:"ecsmesh inbounds have no names"`
//
// makes the decoder report "sectionName: not supported by ecsmesh: ...".
// encoding/json never sees it (blank fields are unexported).
type unsupported struct{}

func jsonFields(t reflect.Type) map[string]field {
	out := map[string]field{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if refused := f.Tag.Get("refused"); f.Name == "_" && refused != "" {
			out[refused] = field{unsupported: f.Tag.Get("why")}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = field{typ: f.Type}
	}
	return out
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}
