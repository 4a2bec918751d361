package plugins_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/bench/artifact"
)

// binaries are the plugins under benchmark, built once by TestMain.
type binaries struct {
	filter, empty, oneheader, floor []byte
	example                         []byte // nil when unavailable; exampleErr says why
	exampleErr                      error
	baseline                        []byte // the filter at artifact.BaselineRevision; nil when unavailable
	baselineErr                     error
}

var bins binaries // set once by TestMain, read-only afterwards

func quick() bool { return os.Getenv("ECSMESH_BENCH_QUICK") != "" }

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if !benchmarking() {
		return m.Run()
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "plugins-bench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "plugins bench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	set := artifact.NewSet(dir)
	read := func(path string, err error) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		return os.ReadFile(path)
	}
	var errs []error
	var e error
	if bins.filter, e = read(set.Filter(ctx)); e != nil {
		errs = append(errs, e)
	}
	if bins.empty, e = read(set.Package(ctx, "github.com/ecsmesh/ecsmesh/bench/plugins/empty", "empty")); e != nil {
		errs = append(errs, e)
	}
	if bins.oneheader, e = read(set.Package(ctx, "github.com/ecsmesh/ecsmesh/bench/plugins/oneheader", "oneheader")); e != nil {
		errs = append(errs, e)
	}
	if bins.floor, e = read(set.Package(ctx, "github.com/ecsmesh/ecsmesh/bench/plugins/floor", "floor")); e != nil {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "plugins bench: %v\n", errs)
		return 1
	}
	p, _, err := set.SDKExample(ctx, "http_headers")
	if err == nil {
		bins.example, err = os.ReadFile(p)
	}
	bins.exampleErr = err
	bins.baseline, bins.baselineErr = read(set.Baseline(ctx))
	return m.Run()
}

// benchmarking reports whether -test.bench was given (building the plugins
// is skipped otherwise: the package has no tests).
func benchmarking() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.bench=") && a != "-test.bench=" {
			return true
		}
	}
	return false
}
