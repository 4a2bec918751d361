// Command report runs the ecsmesh benchmarks (the proxy-wasm filter against
// its baselines in proxyhost, the native filter core, and the control-plane
// benchmarks that exist), prints one table with the machine's CPU and the
// Go and wazero versions, and writes bench/results/latest.json and the raw,
// benchstat-compatible bench/results/latest.txt.
//
//	go run ./bench/cmd/report          # make bench
//	go run ./bench/cmd/report -quick   # make bench-quick: short, for CI smoke
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// report is what latest.json holds.
type report struct {
	Time     time.Time `json:"time"`
	Quick    bool      `json:"quick"`
	Count    int       `json:"count"`
	CPU      string    `json:"cpu"`
	CPUs     int       `json:"cpus"`
	GOOS     string    `json:"goos"`
	GOARCH   string    `json:"goarch"`
	Go       string    `json:"go"`
	Wazero   string    `json:"wazero"`
	SDK      string    `json:"proxyWasmGoSDK"`
	Commit   string    `json:"commit,omitempty"`
	Suites   []suite   `json:"suites"`
	Results  []result  `json:"results"`
	Ratios   []ratio   `json:"ratios"`
	Duration string    `json:"duration"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short run for CI smoke (count 1, short benchtime, small route tables)")
	count := fs.Int("count", 0, "runs of each benchmark (default 3, 1 with -quick)")
	out := fs.String("out", "", "results directory (default <module root>/bench/results)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *count <= 0 {
		*count = 3
		if *quick {
			*count = 1
		}
	}
	ctx := context.Background()
	start := time.Now()
	root, err := goOutput(ctx, "", "env", "GOMOD")
	if err != nil || root == "" || root == os.DevNull {
		return fmt.Errorf("report: finding the module root (run from the repository): %v", err)
	}
	root = filepath.Dir(root)
	if *out == "" {
		*out = filepath.Join(root, "bench", "results")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("report: creating %s: %w", *out, err)
	}
	rep := report{Time: start.UTC(), Quick: *quick, Count: *count, CPU: cpuModel(), CPUs: runtime.NumCPU(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	rep.Go, _ = goOutput(ctx, root, "env", "GOVERSION")
	rep.Wazero, _ = goOutput(ctx, root, "list", "-m", "-f", "{{.Version}}", "github.com/tetratelabs/wazero")
	rep.SDK, _ = goOutput(ctx, root, "list", "-m", "-f", "{{.Version}}", "github.com/proxy-wasm/proxy-wasm-go-sdk")
	if c, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		rep.Commit = strings.TrimSpace(string(c))
	}

	var raw bytes.Buffer
	fmt.Fprintf(&raw, "# ecsmesh bench %s commit=%s quick=%v\ncpu: %s\n", rep.Time.Format(time.RFC3339), rep.Commit, rep.Quick, rep.CPU)
	r := &runner{root: root, quick: *quick, count: *count, raw: &raw, log: stderr}
	rep.Suites = suites()
	for i := range rep.Suites {
		rep.Results = append(rep.Results, r.run(ctx, &rep.Suites[i])...)
	}
	rep.Ratios = ratios(rep.Results)
	rep.Duration = time.Since(start).Round(time.Second).String()

	printTable(stdout, &rep)
	js, err := json.MarshalIndent(&rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encoding JSON: %w", err)
	}
	jsonPath, txtPath := filepath.Join(*out, "latest.json"), filepath.Join(*out, "latest.txt")
	if err := os.WriteFile(jsonPath, append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: writing %s: %w", jsonPath, err)
	}
	if err := os.WriteFile(txtPath, raw.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: writing %s: %w", txtPath, err)
	}
	fmt.Fprintf(stdout, "\nwrote %s and %s (benchstat input) in %s\n", rel(root, jsonPath), rel(root, txtPath), rep.Duration)
	for _, s := range rep.Suites {
		if s.Status == "failed" {
			return fmt.Errorf("report: suite %q failed", s.Name)
		}
	}
	return nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// goOutput runs the go command and returns its trimmed output.
func goOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
