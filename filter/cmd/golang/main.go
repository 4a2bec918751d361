// Command golang is the ecsmesh filter as an Envoy Go HTTP filter
// (envoy.filters.http.golang, plugin_name "ecsmesh"). Build it with
//
//	CGO_ENABLED=1 go build -buildmode=c-shared -o build/ecsmesh-filter.so ./filter/cmd/golang
//
// It has no tests: a test binary importing pkg/http crashes outside Envoy.
// The adapter, package envoygo, is tested with fakes.
package main

import (
	"github.com/ecsmesh/ecsmesh/filter/envoygo"
	"github.com/envoyproxy/envoy/contrib/golang/filters/http/source/go/pkg/http"
)

// init registers the filter: Envoy loads the shared object and never calls main.
func init() {
	http.RegisterHttpFilterFactoryAndConfigParser(envoygo.Name, envoygo.Factory, envoygo.Parser{})
}

func main() {}
