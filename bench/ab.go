package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
)

// `extauthz-bench ab` compares two servers (two extauthz builds, or one
// and the floor) measured at the same time: both run on the server cores
// and each gets its own load generator, so whatever else the machine does
// during a round falls on both alike. On a shared machine the solo rounds
// of `make bench` and `outside` can differ by half from one round to the
// next; the same-time ratio of two builds stays within a few percent, its
// median within about 1%. The absolute figures are not a solo server's
// (the two share the cores and caches), so this compares builds; `make
// bench` reports.

// ABConfig is one run of `extauthz-bench ab`.
type ABConfig struct {
	Repo, Self string // as in OutsideConfig
	// A and B are extauthz binaries, or "floor" for the no-op server.
	A, B string
	// Load is the shape of each side's load; Distinct counts ES256 tokens.
	Load
	Out, Log io.Writer
}

// ABDefaults take about a minute.
func ABDefaults() ABConfig {
	return ABConfig{Load: Load{
		Warmup: time.Second, Duration: 3 * time.Second, Rounds: 6,
		Concurrency: 8, Conns: 2, Distinct: 20_000, Pin: true,
	}}
}

// abFloor names the no-op server as a side of `ab`.
const abFloor = "floor"

// RunAB is `extauthz-bench ab`: per round and scenario (cached ES256,
// distinct ES256), each side's server CPU per Check and B's ÷ A's, then
// the median of those ratios.
func RunAB(ctx context.Context, cfg ABConfig) error {
	if cfg.A == "" || cfg.B == "" {
		return fmt.Errorf("bench: ab: -a and -b are required (an extauthz binary, or %q)", abFloor)
	}
	run, err := newSeparateRun("ab", cfg.Load, cfg.Log)
	if err != nil {
		return err
	}
	defer run.close()
	dir, pin := run.dir, run.pin
	fx, err := newOutsideFixtures(dir, cfg.Repo, cfg.Distinct)
	if err != nil {
		return err
	}
	start := func(side, bin string) (*Target, error) {
		if bin == abFloor {
			return startNoop(side, dir, cfg.Self)
		}
		var extra []string
		if ExtauthzHasFlag(bin, "token-cache-size") {
			extra = append(extra, "--token-cache-size", strconv.Itoa(cfg.Distinct/2))
		}
		return startExtauthz(ctx, side, dir, bin, fx.policy, extra...)
	}
	a, err := start("a", cfg.A)
	if err != nil {
		return err
	}
	defer a.Proc.Stop()
	b, err := start("b", cfg.B)
	if err != nil {
		return err
	}
	defer b.Proc.Stop()

	oc := OutsideConfig{Self: cfg.Self, Load: cfg.Load}
	type scenario struct {
		name   string
		a, b   *outsideScenario
		ratios []float64
	}
	scs := []*scenario{{name: "cached ES256"}, {name: "distinct ES256"}}
	for i, sc := range scs {
		reqs := fx.cached
		if i == 1 {
			reqs = fx.distinct
		}
		sc.a = &outsideScenario{name: "a, " + sc.name, target: a, reqs: reqs}
		sc.b = &outsideScenario{name: "b, " + sc.name, target: b, reqs: reqs}
	}
	fmt.Fprintf(cfg.Out, "extauthz-bench ab: A %s, B %s; both at the same time, %d round(s) of %s per scenario, %d in flight on %d connection(s) each; %s\n",
		cfg.A, cfg.B, cfg.Rounds, cfg.Duration, cfg.Concurrency, cfg.Conns, pin.mode())
	for round := 1; round <= cfg.Rounds; round++ {
		for _, sc := range scs {
			warm := time.Duration(0)
			if round == 1 {
				warm = cfg.Warmup
			}
			x, y, err := runAtOnce(ctx, oc, pin, sc.a, sc.b, warm, round%2 == 0)
			if err != nil {
				return fmt.Errorf("bench: ab: %s: %w", sc.name, err)
			}
			ratio := cpu(y) / cpu(x)
			sc.ratios = append(sc.ratios, ratio)
			fmt.Fprintf(cfg.Out, "  round %d  %-15s A %6.1f µs/Check  B %6.1f µs/Check  B ÷ A %.3f\n", round, sc.name, cpu(x), cpu(y), ratio)
		}
	}
	for _, sc := range scs {
		fmt.Fprintf(cfg.Out, "%s: B's server CPU per Check ÷ A's, median of the rounds: %.3f (range %.3f–%.3f)\n",
			sc.name, median(sc.ratios), slices.Min(sc.ratios), slices.Max(sc.ratios))
	}
	run.ok = true
	return nil
}

// runAtOnce runs a round of two scenarios at the same time, each in its
// own load-generator process, b's started first when bFirst; both must
// allow every Check (the floor answers OK to all).
func runAtOnce(ctx context.Context, oc OutsideConfig, pin *pinning, a, b *outsideScenario, warm time.Duration, bFirst bool) (ra, rb *Result, err error) {
	la, lb, err := loadsAtOnce(ctx, oc.Self, a.load(oc, pin, warm), b.load(oc, pin, warm), bFirst)
	if err != nil {
		return nil, nil, err
	}
	a.pos += uint64(la.Sent)
	b.pos += uint64(lb.Sent)
	ra, rb = la.result(), lb.result()
	for _, r := range []*Result{ra, rb} {
		if r.Denied > 0 || r.Errors > 0 || r.Checks == 0 {
			return nil, nil, fmt.Errorf("%d checks, %d denied, %d errors: every Check should be allowed", r.Checks, r.Denied, r.Errors)
		}
	}
	return ra, rb, nil
}

// loadsAtOnce runs two load generator processes at the same time, b's
// started first when bFirst.
func loadsAtOnce(ctx context.Context, self string, a, b LoadConfig, bFirst bool) (la, lb *loadResult, err error) {
	var ea, eb error
	var wg sync.WaitGroup
	first := func() { la, ea = loadProcess(ctx, self, a) }
	second := func() { lb, eb = loadProcess(ctx, self, b) }
	if bFirst {
		first, second = second, first
	}
	wg.Go(first)
	wg.Go(second)
	wg.Wait()
	if err := errors.Join(ea, eb); err != nil {
		return nil, nil, err
	}
	return la, lb, nil
}
