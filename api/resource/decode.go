package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
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
	verr := &validation.Error{}
	// The walk reports unknown fields and wrongly typed values with their
	// full paths and drops the wrongly typed ones, so that decoding the
	// rest succeeds and Validate reports everything else in the same round.
	warns, _ := unknownFields(reflect.TypeOf(obj), generic, "", walkKindOf(obj), verr)
	normalized, err := json.Marshal(generic)
	if err != nil {
		return nil, nil, single("", err.Error())
	}
	if err := json.Unmarshal(normalized, obj); err != nil && verr.Empty() {
		verr.Add(validation.Root(), strings.TrimPrefix(err.Error(), "json: "))
	}
	obj.GetMeta().Type = kind.Name
	m := obj.GetMeta()
	m.CreationTime, m.ModificationTime = nil, nil
	if dp, ok := obj.(*Dataplane); ok {
		dp.Owner = nil // output only: the control plane decides who owns a Dataplane
	}
	if v := obj.Validate(); v != nil {
		verr.Violations = append(verr.Violations, v.Violations...)
	}
	if !verr.Empty() {
		return obj, nil, verr
	}
	return obj, warns, nil
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
	"networking.transparentProxying.redirectPortInbound":  "ECS on Fargate has no transparent proxy; use VIPs",
	"networking.transparentProxying.redirectPortOutbound": "ECS on Fargate has no transparent proxy; use VIPs",
	"networking.transparentProxying.directAccessServices": "ECS on Fargate has no transparent proxy; use VIPs",
	"networking.transparentProxying.ipFamilyMode":         "ECS on Fargate has no transparent proxy; use VIPs",
	"networking.transparentProxying.reachableBackends":    "ecsmesh has no MeshService resources; use reachableServices",
	"networking.outbound.backendRef":                      "outbounds are named by kuma.io/service",
	"probes":                                              "not supported",
	"spec.provider":                                       "ecsmesh always uses its built-in CA",
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

var indexRE = regexp.MustCompile(`\[[^\]]*\]`)

func stripIndexes(p string) string { return indexRE.ReplaceAllString(p, "") }
