package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/bintest"
)

// childEnv marks a process of this test binary started as one of the
// bench's children (the floor, the load generator): it runs the subcommand
// instead of the tests.
const childEnv = "EXTAUTHZ_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" && len(os.Args) > 1 {
		ok, err := Subcommand(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
		if ok {
			if err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	code := m.Run()
	bintest.Remove()
	os.Exit(code)
}

// separateRunTest skips in -short mode, and returns the real binary and
// this test binary, which runs as the bench's children (the floor, the
// load generators).
func separateRunTest(t *testing.T) (bin, self string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the floor, extauthz and load generators, and builds extauthz")
	}
	bin, err := bintest.Build()
	if err != nil {
		t.Fatal(err)
	}
	if self, err = os.Executable(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, "1")
	// A race-built child would sleep a second at exit.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	return bin, self
}

// TestOutside runs `extauthz-bench outside` for one short round on the real
// binary and asserts the shape of what it prints: both ratios, as numbers.
func TestOutside(t *testing.T) {
	bin, self := separateRunTest(t)
	cfg := OutsideDefaults()
	cfg.Repo, cfg.Self, cfg.Extauthz = "..", self, bin
	cfg.Rounds, cfg.Warmup, cfg.Duration, cfg.Distinct = 1, 0, 200*time.Millisecond, 500
	var out, log bytes.Buffer
	cfg.Out, cfg.Log = &out, &log
	if err := RunOutside(context.Background(), cfg); err != nil {
		t.Fatalf("outside: %v\n%s", err, log.String())
	}
	num := `([0-9]+\.[0-9]+)`
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^cached ÷ floor: ` + num + ` on server CPU per Check .*, ` + num + ` on checks/s`),
		regexp.MustCompile(`(?m)^distinct ES256 ÷ predicted: ` + num + ` on checks/s .*, ` + num + ` on server CPU per Check`),
		regexp.MustCompile(`(?m)^cached ÷ floor, the two at the same time: ` + num + ` on server CPU per Check \(` + num + ` to ` + num + ` over the rounds\)`),
	} {
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no line matching %s in:\n%s", re, out.String())
		}
		for _, v := range m[1:] {
			if f, err := strconv.ParseFloat(v, 64); err != nil || f <= 0 {
				t.Errorf("ratio %q is not a positive number in:\n%s", v, out.String())
			}
		}
	}
	for _, want := range []string{"floor (no-op)", "extauthz, cached ES256", "extauthz, distinct ES256", "raw ES256 verify"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}

// TestAB runs `extauthz-bench ab` for one short round of the floor against
// the real binary and asserts what it prints: a row per scenario and each
// scenario's median ratio, as positive numbers.
func TestAB(t *testing.T) {
	bin, self := separateRunTest(t)
	cfg := ABDefaults()
	cfg.Repo, cfg.Self, cfg.A, cfg.B = "..", self, abFloor, bin
	cfg.Rounds, cfg.Warmup, cfg.Duration, cfg.Distinct = 1, 0, 200*time.Millisecond, 500
	var out, log bytes.Buffer
	cfg.Out, cfg.Log = &out, &log
	if err := RunAB(context.Background(), cfg); err != nil {
		t.Fatalf("ab: %v\n%s", err, log.String())
	}
	num := `([0-9]+\.[0-9]+)`
	for _, sc := range []string{"cached ES256", "distinct ES256"} {
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^  round 1  ` + sc + ` +A +` + num + ` µs/Check  B +` + num + ` µs/Check  B ÷ A ` + num + `$`),
			regexp.MustCompile(`(?m)^` + sc + `: B's server CPU per Check ÷ A's, median of the rounds: ` + num),
		} {
			m := re.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("no line matching %s in:\n%s", re, out.String())
			}
			for _, v := range m[1:] {
				if f, err := strconv.ParseFloat(v, 64); err != nil || f <= 0 {
					t.Errorf("%q is not a positive number in:\n%s", v, out.String())
				}
			}
		}
	}
	if err := RunAB(context.Background(), ABConfig{Load: cfg.Load, A: abFloor}); err == nil {
		t.Error("ab without -b ran")
	}
}

// TestLoadProcessOpenLoop runs `extauthz-bench load -rate` against the
// floor, as make bench's fixed-rate runs do: the process sends the rate
// asked for, every Check is allowed, and the quantiles it prints give the
// same p50 and p99 as its own figures.
func TestLoadProcessOpenLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the floor and a load generator")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, "1")
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	dir := t.TempDir()
	floor, err := startNoop("noop", dir, self)
	if err != nil {
		t.Fatal(err)
	}
	defer floor.Proc.Stop()
	reqs := filepath.Join(dir, "cached.req")
	if err := writeRequests(reqs, [][]byte{outsideRequest("a.b.c", 0), outsideRequest("a.b.c", 1)}); err != nil {
		t.Fatal(err)
	}
	const rate, d = 400, 500 * time.Millisecond
	lr, err := loadProcess(context.Background(), self, LoadConfig{
		Addr: floor.Addr, Pid: floor.Proc.Pid(), Requests: reqs,
		Rate: rate, Concurrency: 8, Conns: 2, Warmup: 100 * time.Millisecond, Duration: d,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := int(rate * d.Seconds()); lr.Checks != want || lr.Denied != 0 || lr.Errors != 0 {
		t.Fatalf("%d checks (%d denied, %d errors), want %d allowed", lr.Checks, lr.Denied, lr.Errors, want)
	}
	if lr.Sent != lr.Checks+int(rate*0.1) {
		t.Errorf("sent %d, want the warm-up's %d and the run's %d", lr.Sent, int(rate*0.1), lr.Checks)
	}
	r := lr.result()
	if len(lr.QuantilesNS) != loadQuantiles || int64(r.Percentile(50)) != lr.P50NS || int64(r.Percentile(99)) != lr.P99NS {
		t.Errorf("%d quantiles; p50 %v p99 %v from them, printed %v %v", len(lr.QuantilesNS), r.Percentile(50), r.Percentile(99), time.Duration(lr.P50NS), time.Duration(lr.P99NS))
	}
	if r.ServerCP <= 0 || r.Elapsed < d*9/10 {
		t.Errorf("server CPU %v over %v", r.ServerCP, r.Elapsed)
	}
}
