// Package envoygo adapts the filter core to the Envoy Go HTTP filter
// (envoy.filters.http.golang, github.com/envoyproxy/envoy
// contrib/golang/common/go/api). It imports only the api package, so its
// tests run outside Envoy; the c-shared main in filter/cmd/golang registers
// [Factory] and [Parser] under [Name].
package envoygo

import (
	"fmt"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	"github.com/ecsmesh/ecsmesh/filter"
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Name is the plugin_name of the filter in the Envoy configuration.
const Name = "ecsmesh"

// Config is the parsed plugin_config of one filter instance.
type Config struct {
	compiled *filter.Compiled
	counters []counter
}

type counter struct {
	bit    filter.Counter
	metric api.CounterMetric
}

// Compiled returns the compiled core configuration.
func (c *Config) Compiled() *filter.Compiled { return c.compiled }

// Parser implements api.StreamFilterConfigParser. The plugin_config holds
// the JSON of filter.Config, as a google.protobuf.StringValue (the JSON
// text), a google.protobuf.BytesValue, a google.protobuf.Struct, or an
// xds.type.v3.TypedStruct whose value is that Struct.
type Parser struct{}

// Parse decodes and validates the plugin_config; Envoy rejects the
// configuration with the returned error (one line, every problem).
func (Parser) Parse(cfg *anypb.Any, callbacks api.ConfigCallbackHandler) (interface{}, error) {
	data, err := ConfigJSON(cfg)
	if err != nil {
		return nil, err
	}
	compiled, err := filter.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("envoygo: %w", err)
	}
	c := &Config{compiled: compiled}
	if callbacks != nil { // nil when parsing per-route configuration
		for _, bit := range filter.Counters() {
			c.counters = append(c.counters, counter{bit: bit, metric: callbacks.DefineCounterMetric(bit.Name())})
		}
	}
	return c, nil
}

// Merge keeps the most specific configuration.
func (Parser) Merge(parent, child interface{}) interface{} {
	if child == nil {
		return parent
	}
	return child
}

// ConfigJSON extracts the JSON configuration from a plugin_config Any.
func ConfigJSON(cfg *anypb.Any) ([]byte, error) {
	if cfg == nil {
		return nil, fmt.Errorf("envoygo: plugin_config is missing")
	}
	msg, err := cfg.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("envoygo: decoding plugin_config %s: %w", cfg.GetTypeUrl(), err)
	}
	switch m := msg.(type) {
	case *wrapperspb.StringValue:
		return []byte(m.GetValue()), nil
	case *wrapperspb.BytesValue:
		return m.GetValue(), nil
	case *structpb.Struct:
		return structJSON(m)
	case *xdstype.TypedStruct:
		return structJSON(m.GetValue())
	default:
		return nil, fmt.Errorf("envoygo: plugin_config must be a StringValue, BytesValue, Struct or TypedStruct, not %s", cfg.GetTypeUrl())
	}
}

func structJSON(s *structpb.Struct) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("envoygo: plugin_config struct is empty")
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("envoygo: encoding plugin_config struct as JSON: %w", err)
	}
	return b, nil
}
