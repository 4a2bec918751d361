package resource

import (
	"slices"
	"strings"
	"testing"
)

func TestReachableServices(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // nil: every service
		errs      []string
		warn      string
	}{
		{name: "absent", doc: `{}`},
		{name: "listed", doc: `{"transparentProxying":{"reachableServices":["redis","api"]}}`, want: []string{"redis", "api"}},
		{name: "empty list reaches nothing", doc: `{"transparentProxying":{"reachableServices":[]}}`, want: []string{}},
		{name: "kuma's other fields warn", doc: `{"transparentProxying":{"redirectPortInbound":15006,"reachableServices":["redis"]}}`,
			want: []string{"redis"}, warn: "networking.transparentProxying.redirectPortInbound"},
		{name: "bad names", doc: `{"transparentProxying":{"reachableServices":["redis","bad name","redis"]}}`,
			errs: []string{"networking.transparentProxying.reachableServices[1]: must be a kuma.io/service value", "networking.transparentProxying.reachableServices[2]: duplicates reachableServices[0]"}},
		{name: "unknown field", doc: `{"transparentProxying":{"reachableService":["redis"]}}`,
			errs: []string{"networking.transparentProxying.reachableService"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := `{"address":"10.0.0.1","inbound":[{"port":15000,"tags":{"kuma.io/service":"web"}}]`
			if inner := tc.doc[1 : len(tc.doc)-1]; inner != "" {
				net += "," + inner
			}
			net += "}"
			obj, warns, err := DecodeOne([]byte(`{"type":"Dataplane","mesh":"default","name":"web-1","networking":` + net + `}`))
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("accepted; want %v", tc.errs)
				}
				for _, e := range tc.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q lacks %q", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := obj.(*Dataplane).Reachable()
			if (got == nil) != (tc.want == nil) || !slices.Equal(got, tc.want) {
				t.Errorf("reachable %#v, want %#v", got, tc.want)
			}
			if tc.warn != "" && !strings.Contains(strings.Join(warns, "\n"), tc.warn) {
				t.Errorf("warnings %v lack %s", warns, tc.warn)
			}
		})
	}
}
