package envoygo

import (
	"os"
	"regexp"
	"testing"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	"github.com/ecsmesh/ecsmesh/filter"
	golangv3 "github.com/envoyproxy/go-control-plane/contrib/envoy/extensions/filters/http/golang/v3alpha"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"
)

// TestReadmeEnvoySnippets validates every yaml block of filter/README.md as
// an Envoy Listener, with ValidateAll on it and on every Any it packs, and
// parses the filter configuration each one carries.
func TestReadmeEnvoySnippets(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) != 2 {
		t.Fatalf("found %d yaml blocks in the README, want 2 (Wasm and Go forms)", len(blocks))
	}
	forms := map[string]bool{}
	for i, b := range blocks {
		js, err := yaml.YAMLToJSON(b[1])
		if err != nil {
			t.Fatalf("block %d: YAML: %v", i, err)
		}
		var l listenerv3.Listener
		if err := protojson.Unmarshal(js, &l); err != nil {
			t.Fatalf("block %d: as Listener: %v", i, err)
		}
		if err := l.ValidateAll(); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		walkAnys(t, l.ProtoReflect(), func(m proto.Message) {
			var cfg []byte
			switch m := m.(type) {
			case *wasmfilterv3.Wasm:
				forms["wasm"] = true
				var s wrapperspb.StringValue
				if err := m.GetConfig().GetConfiguration().UnmarshalTo(&s); err != nil {
					t.Fatalf("block %d: wasm configuration: %v", i, err)
				}
				cfg = []byte(s.GetValue())
			case *golangv3.Config:
				forms["golang"] = true
				if m.GetPluginName() != Name {
					t.Errorf("plugin_name %q, want %q", m.GetPluginName(), Name)
				}
				if cfg, err = ConfigJSON(m.GetPluginConfig()); err != nil {
					t.Fatalf("block %d: %v", i, err)
				}
			default:
				return
			}
			if _, err := filter.Parse(cfg); err != nil {
				t.Errorf("block %d: filter configuration: %v", i, err)
			}
		})
	}
	if !forms["wasm"] || !forms["golang"] {
		t.Errorf("README snippets cover %v, want both forms", forms)
	}
}

// walkAnys unpacks every Any below m, validates it, reports it to f and
// descends into it.
func walkAnys(t *testing.T, m protoreflect.Message, f func(proto.Message)) {
	t.Helper()
	if a, ok := m.Interface().(*anypb.Any); ok {
		if a.GetTypeUrl() == "" {
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			t.Fatalf("unpacking %s: %v", a.GetTypeUrl(), err)
		}
		if v, ok := inner.(interface{ ValidateAll() error }); ok {
			if err := v.ValidateAll(); err != nil {
				t.Fatalf("%s: %v", a.GetTypeUrl(), err)
			}
		} else if _, ok := inner.(*xdstype.TypedStruct); !ok && a.GetTypeUrl() != "type.googleapis.com/google.protobuf.StringValue" {
			t.Fatalf("%s has no ValidateAll", a.GetTypeUrl())
		}
		f(inner)
		walkAnys(t, inner.ProtoReflect(), f)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				walkAnys(t, v.List().Get(i).Message(), f)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walkAnys(t, mv.Message(), f)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walkAnys(t, v.Message(), f)
		}
		return true
	})
}
