package resource

import (
	"encoding/json"
	"fmt"
	"time"
)

// Marshal renders obj as the JSON the store keeps and the API returns.
func Marshal(obj Object) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("resource: marshalling %s %s: %w", obj.GetMeta().Type, obj.GetMeta().Name, err)
	}
	return b, nil
}

// Unmarshal reads a stored document of kind. It does not validate: stored
// documents were validated when written.
func Unmarshal(kind string, data []byte) (Object, error) {
	k, ok := LookupKind(kind)
	if !ok {
		return nil, fmt.Errorf("resource: unknown kind %q", kind)
	}
	obj := k.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("resource: unmarshalling %s: %w", kind, err)
	}
	obj.GetMeta().Type = k.Name
	return obj, nil
}

// SetTimes records the store's creation and modification times on obj.
func SetTimes(obj Object, created, modified time.Time) {
	m := obj.GetMeta()
	c, md := created.UTC(), modified.UTC()
	m.CreationTime, m.ModificationTime = &c, &md
}
