package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/ecsmesh/ecsmesh/api/validation"
)

// MaxDocuments caps how many documents one file may hold.
const MaxDocuments = 1000

// Document is one decoded document of a file.
type Document struct {
	// Index is the document's position in the file, from 0.
	Index int
	// Object is the decoded, validated resource.
	Object Object
	// Warnings name Kuma fields ecsmesh accepts but ignores.
	Warnings []string
}

// DocumentError holds the violations of one document.
type DocumentError struct {
	Index int
	Kind  string
	Name  string
	Err   *validation.Error
}

// FileError is every violation of every document of a file.
type FileError struct {
	Documents []DocumentError
}

// Error renders one line per violation, "document[i] (Kind name): field: message".
func (e *FileError) Error() string {
	var lines []string
	for _, d := range e.Documents {
		for _, v := range d.Err.Violations {
			lines = append(lines, d.prefix()+v.Field+": "+v.Message)
		}
	}
	return strings.Join(lines, "\n")
}

func (d DocumentError) prefix() string {
	p := fmt.Sprintf("document[%d]", d.Index)
	if d.Kind != "" || d.Name != "" {
		p += " (" + strings.TrimSpace(d.Kind+" "+d.Name) + ")"
	}
	return p + ": "
}

// Violations flattens the file's violations, each field prefixed with its
// document: "document[1].networking.address".
func (e *FileError) Violations() []validation.Violation {
	var out []validation.Violation
	for _, d := range e.Documents {
		for _, v := range d.Err.Violations {
			f := fmt.Sprintf("document[%d]", d.Index)
			if v.Field != "" {
				f += "." + v.Field
			}
			out = append(out, validation.Violation{Field: f, Message: v.Message})
		}
	}
	return out
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// Decode reads every resource of a YAML (multi-document, "---") or JSON
// (one object, an array, or Kuma's {"items": [...]}) file and validates
// each. It returns all documents or, when any is invalid, a *FileError
// with every violation of every document: callers store nothing then.
func Decode(data []byte) ([]Document, error) {
	raws, err := split(data)
	if err != nil {
		return nil, &FileError{Documents: []DocumentError{{Index: 0, Err: single("", err.Error())}}}
	}
	if len(raws) == 0 {
		return nil, &FileError{Documents: []DocumentError{{Index: 0, Err: single("", "the file holds no resource")}}}
	}
	if len(raws) > MaxDocuments {
		return nil, &FileError{Documents: []DocumentError{{Index: 0, Err: single("", fmt.Sprintf("the file holds %d documents; at most %d", len(raws), MaxDocuments))}}}
	}
	var docs []Document
	ferr := &FileError{}
	seen := map[string]int{}
	for i, raw := range raws {
		obj, warns, verr := decodeOne(raw)
		if verr == nil {
			m := obj.GetMeta()
			key := m.Type + "/" + m.Mesh + "/" + m.Name
			if j, dup := seen[key]; dup {
				verr = single("name", fmt.Sprintf("duplicates document[%d]: the same %s is defined twice", j, m.Type))
			}
			seen[key] = i
		}
		if verr != nil {
			de := DocumentError{Index: i, Err: verr}
			if obj != nil {
				de.Kind, de.Name = obj.GetMeta().Type, obj.GetMeta().Name
			}
			ferr.Documents = append(ferr.Documents, de)
			continue
		}
		docs = append(docs, Document{Index: i, Object: obj, Warnings: warns})
	}
	if len(ferr.Documents) > 0 {
		return nil, ferr
	}
	return docs, nil
}

// DecodeOne reads and validates exactly one resource (API request bodies).
func DecodeOne(data []byte) (Object, []string, error) {
	docs, err := Decode(data)
	if err != nil {
		var ferr *FileError
		if errors.As(err, &ferr) && len(ferr.Documents) == 1 {
			return nil, nil, ferr.Documents[0].Err
		}
		return nil, nil, err
	}
	if len(docs) != 1 {
		return nil, nil, single("", fmt.Sprintf("expected one resource, got %d", len(docs)))
	}
	return docs[0].Object, docs[0].Warnings, nil
}

func single(field, msg string) *validation.Error {
	return &validation.Error{Violations: []validation.Violation{{Field: field, Message: msg}}}
}

// split turns a file into JSON documents.
func split(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') && json.Valid(trimmed) {
		if trimmed[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(trimmed, &items); err != nil {
				return nil, fmt.Errorf("invalid JSON: %v", err)
			}
			return rawList(items), nil
		}
		var list struct {
			Items *[]json.RawMessage `json:"items"`
		}
		if json.Unmarshal(trimmed, &list) == nil && list.Items != nil {
			return rawList(*list.Items), nil
		}
		return [][]byte{trimmed}, nil
	}
	var out [][]byte
	for _, part := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(part)) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("document %d: invalid YAML: %v", len(out), err)
		}
		if string(j) == "null" {
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

func rawList(items []json.RawMessage) [][]byte {
	out := make([][]byte, len(items))
	for i := range items {
		out[i] = items[i]
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// metaKeys are the top-level keys every kind shares.
var metaKeys = map[string]bool{"type": true, "mesh": true, "name": true, "labels": true, "creationTime": true, "modificationTime": true}

func decodeOne(raw []byte) (Object, []string, *validation.Error) {
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, nil, single("", "each document must be an object with type, name and (for mesh resources) mesh")
	}
	typ, _ := generic["type"].(string)
	if typ == "" {
		return nil, nil, single("type", "must be set to one of "+strings.Join(KindNames(), ", "))
	}
	kind, ok := LookupKind(typ)
	if !ok || kind.Name != typ {
		return nil, nil, single("type", fmt.Sprintf("unknown type %q; must be one of %s", typ, strings.Join(KindNames(), ", ")))
	}
	obj := kind.New()
	if _, hasSpec := reflect.TypeOf(obj).Elem().FieldByName("Spec"); hasSpec {
		if _, ok := generic["spec"]; !ok {
			// Accept the policy body at the top level too, besides
			// Kuma's form with the body under spec.
			spec := map[string]any{}
			for k, v := range generic {
				if !metaKeys[k] {
					spec[k] = v
					delete(generic, k)
				}
			}
			generic["spec"] = spec
		}
	}
	normalized, err := json.Marshal(generic)
	if err != nil {
		return nil, nil, single("", err.Error())
	}
	verr := &validation.Error{}
	if err := json.Unmarshal(normalized, obj); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// encoding/json names the field without list indexes; the
			// walk below pins it down, so only report what it cannot.
			verr.Add(validation.Root().Field(te.Field), fmt.Sprintf("must be a %s, got a %s", jsonKind(te.Type), te.Value))
		} else if !strings.Contains(err.Error(), "duration string") {
			verr.Add(validation.Root(), strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	obj.GetMeta().Type = kind.Name
	m := obj.GetMeta()
	m.CreationTime, m.ModificationTime = nil, nil
	if dp, ok := obj.(*Dataplane); ok {
		dp.Owner = nil // output only: the control plane decides who owns a Dataplane
	}
	warns := unknownFields(reflect.TypeOf(obj), generic, "", verr)
	if v := obj.Validate(); v != nil {
		verr.Violations = append(verr.Violations, v.Violations...)
	}
	if !verr.Empty() {
		return obj, nil, verr
	}
	return obj, warns, nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32, reflect.Uint64:
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

// ignoredKumaFields are Kuma fields a Kong Mesh user's files may carry that
// ecsmesh accepts and ignores, with a warning; any other unknown field is a
// violation (it is most likely a typo).
var ignoredKumaFields = map[string]string{
	"mtls.enabledBackend":             "ecsmesh always runs its built-in CA",
	"mtls.backends":                   "ecsmesh always runs its built-in CA",
	"metrics":                         "not supported yet",
	"logging":                         "not supported yet",
	"tracing":                         "not supported yet",
	"networking":                      "Mesh networking settings are not supported",
	"routing":                         "not supported",
	"constraints":                     "not supported",
	"skipCreatingInitialPolicies":     "ecsmesh creates no initial policies",
	"meshServices":                    "ecsmesh derives services from Dataplanes",
	"networking.inbound.health":       "readiness comes from the agent's health sync",
	"networking.inbound.serviceProbe": "readiness comes from the agent's health sync",
	"networking.inbound.address":      "inbounds listen on networking.address",
	"networking.advertisedAddress":    "not supported",
	"networking.advertisedPort":       "not supported",
	"networking.transparentProxying":  "ECS on Fargate has no transparent proxy; use VIPs",
	"networking.outbound.backendRef":  "outbounds are named by kuma.io/service",
	"probes":                          "not supported",
	"spec.provider":                   "ecsmesh always uses its built-in CA",
}

// unknownFields walks the input against the Go type and returns a warning
// per ignored Kuma field; other unknown fields become violations.
func unknownFields(t reflect.Type, v any, path string, verr *validation.Error) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var warns []string
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(Duration{}) {
			var d Duration
			b, _ := json.Marshal(v)
			if err := d.UnmarshalJSON(b); err != nil {
				verr.Add(validation.Root().Field(path), err.Error())
			}
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			p := joinPath(path, k)
			ft, known := fields[k]
			if !known {
				plain := stripIndexes(p)
				if why, ok := ignoredKumaFields[plain]; ok {
					warns = append(warns, fmt.Sprintf("%s: ignored (%s)", p, why))
				} else {
					verr.Add(validation.Root().Field(p), "unknown field; check its spelling against docs/reference.md#resources")
				}
				continue
			}
			warns = append(warns, unknownFields(ft, m[k], p, verr)...)
		}
	case reflect.Slice:
		if l, ok := v.([]any); ok {
			for i, e := range l {
				warns = append(warns, unknownFields(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i), verr)...)
			}
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok && t.Elem().Kind() != reflect.String {
			for _, k := range slices.Sorted(maps.Keys(m)) {
				warns = append(warns, unknownFields(t.Elem(), m[k], path+"["+fmt.Sprintf("%q", k)+"]", verr)...)
			}
		}
	}
	sort.Strings(warns)
	return warns
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

var indexRE = regexp.MustCompile(`\[[^\]]*\]`)

func stripIndexes(p string) string { return indexRE.ReplaceAllString(p, "") }
