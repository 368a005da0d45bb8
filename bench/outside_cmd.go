package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Subcommand runs the subcommands of extauthz-bench other than the full
// bench: noop (the floor), load (one load-generator run), outside and ab. It
// returns false when args[0] names none of them. The bench's tests run it
// too, when they start their own binary as a child.
func Subcommand(ctx context.Context, args []string, stdout, stderr io.Writer) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "noop":
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		return true, ServeNoop(ctx, *addr, stdout)
	case "load":
		var c LoadConfig
		fs.StringVar(&c.Addr, "addr", "", "the server's gRPC address")
		fs.IntVar(&c.Pid, "pid", 0, "the server's process id, whose CPU is measured (0: none)")
		fs.StringVar(&c.Requests, "requests", "", "the file of requests")
		fs.Uint64Var(&c.Start, "start", 0, "the first request to send")
		fs.IntVar(&c.Concurrency, "concurrency", 16, "requests in flight")
		fs.IntVar(&c.Conns, "conns", 4, "HTTP/2 connections")
		fs.DurationVar(&c.Warmup, "warmup", 0, "warm-up before the measured run (at -rate, when set)")
		fs.DurationVar(&c.Duration, "duration", 3e9, "the measured run")
		fs.BoolVar(&c.Pin, "pin", false, "move to the load generator's cores (the second half of those this process may use)")
		fs.Float64Var(&c.Rate, "rate", 0, "Checks a second, open loop with up to -concurrency in flight (0: closed loop)")
		fs.StringVar(&c.Method, "method", "", "the gRPC method (default: ext_authz's Check)")
		fs.BoolVar(&c.Once, "once", false, "send each request at most once, from -start on, and stop when they run out")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		return true, RunLoad(ctx, c, stdout)
	case "outside":
		c := OutsideDefaults()
		c.Load.Flags(fs)
		fs.StringVar(&c.Extauthz, "extauthz", "", "an extauthz binary to measure (default: go build ./cmd/extauthz)")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		var err error
		if c.Repo, c.Self, err = repoAndSelf(); err != nil {
			return true, err
		}
		c.Out, c.Log = stdout, stderr
		return true, RunOutside(ctx, c)
	case "ab":
		c := ABDefaults()
		c.Load.Flags(fs)
		fs.StringVar(&c.A, "a", "", "side A: an extauthz binary, or "+abFloor+" for the no-op server")
		fs.StringVar(&c.B, "b", "", "side B: an extauthz binary, or "+abFloor)
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		var err error
		if c.Repo, c.Self, err = repoAndSelf(); err != nil {
			return true, err
		}
		c.Out, c.Log = stdout, stderr
		return true, RunAB(ctx, c)
	}
	return false, nil
}

// repoAndSelf are the repository root (the working directory, which must
// be it: bench/extauthz/policy.yaml is read from it) and this program.
func repoAndSelf() (repo, self string, err error) {
	if repo, err = os.Getwd(); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(repo, "bench", "extauthz", "policy.yaml")); err != nil {
		return "", "", fmt.Errorf("run from the repository root: %w", err)
	}
	self, err = os.Executable()
	return repo, self, err
}
