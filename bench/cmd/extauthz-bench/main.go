// Command extauthz-bench is `make bench`: it measures extauthz end to end
// against a no-op ext_authz server and its peers (OPA-Envoy, Heimdall), runs
// the in-process benchmarks, and writes docs/benchmarks.md and its chart.
//
//	go run ./bench/cmd/extauthz-bench -out docs/benchmarks.md
//
// -scenarios limits a run to some scenarios (the floor always runs), for a
// report written elsewhere:
//
//	go run ./bench/cmd/extauthz-bench -scenarios dpop -peers=false -gobench=false -out /tmp/dpop.md
//
// Run from the repository root. `extauthz-bench noop -addr 127.0.0.1:0` is
// the no-op server the bench starts as its floor. `extauthz-bench outside`
// is the outside measurement a reader reproduces in a minute: the floor,
// extauthz and a load generator (`extauthz-bench load`) as separate
// processes, printing issue 13's two ratios:
//
//	go run ./bench/cmd/extauthz-bench outside [-rounds 3 -duration 3s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/extauthz/extauthz/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if ok, err := bench.Subcommand(ctx, os.Args[1:], os.Stdout, os.Stderr); ok {
		switch {
		case errors.Is(err, flag.ErrHelp):
			os.Exit(2)
		case err != nil:
			fmt.Fprintf(os.Stderr, "extauthz-bench %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "extauthz-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg := bench.Defaults()
	fs := flag.NewFlagSet("extauthz-bench", flag.ContinueOnError)
	fs.StringVar(&cfg.Out, "out", "docs/benchmarks.md", "the report to write; the chart goes beside it as .svg")
	cfg.Load.Flags(fs)
	fs.IntVar(&cfg.Assertions, "assertions", cfg.Assertions, "client assertions signed per replay store")
	fs.IntVar(&cfg.DPoPProofs, "dpop-proofs", cfg.DPoPProofs, "DPoP-bound tokens signed, each with its own proof")
	scenarios := fs.String("scenarios", "all", "comma-separated scenarios to measure besides the floor, or all: "+strings.Join(bench.ScenarioKeys()[1:], ", "))
	fs.BoolVar(&cfg.Peers, "peers", cfg.Peers, "build and measure OPA-Envoy and Heimdall")
	fs.StringVar(&cfg.Baseline, "baseline", "", "a git revision whose extauthz runs beside this one (cached and new ES256 tokens), for a before/after in one run")
	fs.BoolVar(&cfg.GoBench, "gobench", cfg.GoBench, "run the in-process go test benchmarks")
	fs.StringVar(&cfg.GoBenchDur, "gobench-time", cfg.GoBenchDur, "-benchtime of the in-process speed benchmarks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scenarios != "all" {
		for _, k := range strings.Split(*scenarios, ",") {
			if k = strings.TrimSpace(k); k != "" {
				cfg.Scenarios = append(cfg.Scenarios, k)
			}
		}
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "bench", "build-peers.sh")); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	// docs/benchmarks.md is the full run's report; a partial one goes
	// elsewhere.
	if out, err := filepath.Abs(cfg.Out); err == nil && cfg.Partial() && out == filepath.Join(repo, "docs", "benchmarks.md") {
		return fmt.Errorf("-scenarios %s is a partial run: give it an -out other than docs/benchmarks.md", *scenarios)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Repo, cfg.Self, cfg.Log = repo, self, os.Stderr
	cfg.Command = strings.Join(append([]string{"go run ./bench/cmd/extauthz-bench"}, args...), " ")
	return bench.Run(ctx, cfg)
}
