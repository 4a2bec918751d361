package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// result is one benchmark's metrics, the median over its runs.
type result struct {
	Suite   string             `json:"suite"`
	Package string             `json:"package"`
	Name    string             `json:"name"`
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"`
	samples map[string][]float64
}

// runner runs suites from the module root.
type runner struct {
	root  string
	quick bool
	count int
	raw   io.Writer // the benchstat-compatible output, all suites
	log   io.Writer // progress
}

// run runs one suite and returns its results; s.Status tells how it went.
func (r *runner) run(ctx context.Context, s *suite) []result {
	pattern, benchtime := s.Bench, s.Benchtime
	if r.quick {
		pattern, benchtime = s.QuickBench, s.QuickBenchtime
	}
	if pattern == "" {
		s.Status, s.Reason = "skipped", "not run in this mode"
		return nil
	}
	if _, err := os.Stat(filepath.Join(r.root, s.Package)); err != nil {
		s.Status, s.Reason = "skipped", "package "+s.Package+" does not exist yet"
		return nil
	}
	count := r.count
	if s.Count > 0 {
		count = s.Count
	}
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem",
		"-count", strconv.Itoa(count), "-benchtime", benchtime, "-timeout", "30m", s.Package}
	fmt.Fprintf(r.log, "report: go %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = r.root
	cmd.Env = os.Environ()
	if r.quick {
		cmd.Env = append(cmd.Env, "ECSMESH_BENCH_QUICK=1")
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	results, skipped := parse(s, out.Bytes())
	if len(results) > 0 {
		r.raw.Write(out.Bytes())
	}
	s.Skipped = skipped
	switch {
	case err != nil:
		s.Status, s.Reason = "failed", fmt.Sprintf("go test: %v: %s", err, lastLines(out.String(), 6))
	case len(results) == 0:
		s.Status, s.Reason = "skipped", "no benchmarks match "+pattern+" yet"
	default:
		s.Status = "ok"
	}
	return results
}

// parse reads go test -bench output: results (medians per name and unit)
// and the skipped benchmarks with their first log line.
func parse(s *suite, out []byte) ([]result, []string) {
	benchLine := regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)
	skipLine := regexp.MustCompile(`^\s*--- SKIP: (Benchmark\S+)`)
	byName := map[string]*result{}
	var order []string
	var skipped []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pendingSkip := ""
	for sc.Scan() {
		line := sc.Text()
		if pendingSkip != "" {
			reason := strings.TrimSpace(line)
			if i := strings.Index(reason, ": "); i >= 0 && strings.Contains(reason[:i], ".go:") {
				reason = reason[i+2:]
			}
			skipped = append(skipped, pendingSkip+": "+reason)
			pendingSkip = ""
			continue
		}
		if m := skipLine.FindStringSubmatch(line); m != nil {
			pendingSkip = m[1]
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		if len(fields)%2 != 0 {
			continue
		}
		res, ok := byName[m[1]]
		if !ok {
			res = &result{Suite: s.Name, Package: s.Package, Name: m[1], samples: map[string][]float64{}}
			byName[m[1]] = res
			order = append(order, m[1])
		}
		res.Runs++
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			res.samples[fields[i+1]] = append(res.samples[fields[i+1]], v)
		}
	}
	results := make([]result, 0, len(order))
	for _, name := range order {
		res := byName[name]
		res.Metrics = map[string]float64{}
		for unit, vs := range res.samples {
			res.Metrics[unit] = median(vs)
		}
		results = append(results, *res)
	}
	return results, dedupe(skipped)
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
