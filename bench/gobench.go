package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// goBench is one line of `go test -bench` output.
type goBench struct {
	Pkg     string
	Name    string // without the -GOMAXPROCS suffix
	N       int
	Metrics map[string]float64 // by unit: ns/op, B/op, allocs/op, B/entry…
}

// The in-process benchmarks the report shows. Speed benchmarks run for
// GoBenchDur each; the memory ones, which build a full store, run once.
var (
	speedBenchPkgs = []string{"./internal/token", "./internal/policy", "./internal/check", "./internal/replay", "./internal/keys", "./internal/txtoken"}
	speedBenches   = "^(BenchmarkParseVerify|BenchmarkParse|BenchmarkRawVerify|BenchmarkPolicySelect|BenchmarkPolicyEval|BenchmarkCheck|BenchmarkCheckDPoP|BenchmarkDecodeCheckRequest|BenchmarkMemoryClaim|BenchmarkKeysCached|BenchmarkMint|BenchmarkCheckInternalToken)$"
	memBenchPkgs   = []string{"./internal/policy", "./internal/check", "./internal/replay"}
	memBenches     = "^(BenchmarkMemoryFootprint|BenchmarkIssuersMemory|BenchmarkTokenCacheMemory)$"
)

func runGoBench(ctx context.Context, cfg Config, logf func(string, ...any)) ([]goBench, error) {
	var (
		all  []goBench
		errs []error
	)
	for _, run := range []struct {
		pattern, benchtime, count string
		pkgs                      []string
	}{
		{speedBenches, cfg.GoBenchDur, "3", speedBenchPkgs},
		{memBenches, "1x", "1", memBenchPkgs},
	} {
		// -p 1: one package's benchmarks at a time, or they share the cores.
		args := append([]string{"test", "-p", "1", "-run", "^$", "-bench", run.pattern, "-benchmem", "-benchtime", run.benchtime, "-count", run.count}, run.pkgs...)
		logf("go %s", strings.Join(args, " "))
		out, err := goCmd(ctx, cfg.Repo, args...).CombinedOutput()
		all = append(all, medians(parseGoBench(string(out)))...)
		if err != nil {
			// Keep going: a package that does not build costs its own
			// numbers, not the others'.
			errs = append(errs, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, failures(string(out))))
		}
	}
	return all, errors.Join(errs...)
}

// failures keeps the lines of go test's output that say what failed.
func failures(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "goos:") || strings.HasPrefix(line, "goarch:") ||
			strings.HasPrefix(line, "pkg:") || strings.HasPrefix(line, "cpu:") || line == "PASS" || strings.HasPrefix(line, "ok ") || line == "" {
			continue
		}
		keep = append(keep, line)
	}
	return tailLines(strings.Join(keep, "\n"), 30)
}

// medians folds the -count runs of each benchmark into one, the median of
// each metric, in the order the benchmarks first appear.
func medians(bs []goBench) []goBench {
	var out []goBench
	runs := map[string][]goBench{}
	for _, b := range bs {
		key := b.Pkg + " " + b.Name
		if _, seen := runs[key]; !seen {
			out = append(out, goBench{Pkg: b.Pkg, Name: b.Name, Metrics: map[string]float64{}})
		}
		runs[key] = append(runs[key], b)
	}
	for i := range out {
		rs := runs[out[i].Pkg+" "+out[i].Name]
		out[i].N = rs[0].N
		for unit := range rs[0].Metrics {
			var v []float64
			for _, r := range rs {
				if x, ok := r.Metrics[unit]; ok {
					v = append(v, x)
				}
			}
			out[i].Metrics[unit] = median(v)
		}
	}
	return out
}

var procSuffix = regexp.MustCompile(`-\d+$`)

func parseGoBench(out string) []goBench {
	var res []goBench
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/extauthz/extauthz/")
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		b := goBench{Pkg: pkg, Name: procSuffix.ReplaceAllString(f[0], ""), N: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.Metrics[f[i+1]] = v
		}
		res = append(res, b)
	}
	return res
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
