package proxyhost_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ecsmesh/ecsmesh/bench/artifact"
)

// plugins are the .wasm files the tests load, built once by TestMain.
type plugins struct {
	filter, empty, oneheader []byte
	// example is the SDK's examples/http_headers, nil when its source is not
	// available (exampleErr says why).
	example    []byte
	exampleErr error
}

var wasm plugins // set once by TestMain, read-only afterwards

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "proxyhost-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "proxyhost test: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	set := artifact.NewSet(dir)
	read := func(path string, err error) []byte {
		if err != nil {
			fmt.Fprintf(os.Stderr, "proxyhost test: %v\n", err)
			os.Exit(1)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "proxyhost test: %v\n", err)
			os.Exit(1)
		}
		return b
	}
	wasm.filter = read(set.Filter(ctx))
	wasm.empty = read(set.Package(ctx, "github.com/ecsmesh/ecsmesh/bench/plugins/empty", "empty"))
	wasm.oneheader = read(set.Package(ctx, "github.com/ecsmesh/ecsmesh/bench/plugins/oneheader", "oneheader"))
	if p, _, err := set.SDKExample(ctx, "http_headers"); err != nil {
		wasm.exampleErr = err
	} else {
		wasm.example = read(p, nil)
	}
	return m.Run()
}
