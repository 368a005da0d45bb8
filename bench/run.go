package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/extauthz/extauthz/bench/mint"
)

// Config is one run of the bench.
type Config struct {
	Repo    string // the repository root
	Out     string // the Markdown report; the chart goes beside it as .svg
	Self    string // this program, started again as the no-op server
	Command string // the command that ran, for the report

	Load
	// Assertions is the number of single-use client assertions signed for
	// each replay store.
	Assertions int
	// DPoPProofs is the number of DPoP-bound access tokens signed, each
	// with its own single-use proof.
	DPoPProofs int
	// Scenarios limits the run to these scenarios (ScenarioKeys); the floor
	// is always measured. Empty means every scenario.
	Scenarios []string
	Peers     bool // build and run OPA-Envoy and Heimdall
	// Baseline is a git revision whose extauthz runs beside this one in the
	// cached and new-ES256 scenarios, for a before/after in one run.
	Baseline   string
	GoBench    bool // run the in-process benchmarks
	GoBenchDur string

	Log io.Writer
}

// Load is the shape of a run's load, shared by make bench and outside.
type Load struct {
	Warmup      time.Duration // before a scenario's first round
	Duration    time.Duration // each measured round
	Rounds      int
	Concurrency int // requests in flight (closed loop)
	Conns       int // HTTP/2 connections per server
	// Distinct is the number of distinct tokens per algorithm; extauthz's
	// token cache is set to half of it, so cycling through them never hits.
	Distinct int
	// Pin puts the servers and the load generator on different cores
	// (taskset), when the machine allows.
	Pin bool
}

// Flags registers the load's flags on fs, with l's values as defaults.
func (l *Load) Flags(fs *flag.FlagSet) {
	fs.DurationVar(&l.Warmup, "warmup", l.Warmup, "warm-up before each scenario's first round")
	fs.DurationVar(&l.Duration, "duration", l.Duration, "length of each measured round")
	fs.IntVar(&l.Rounds, "rounds", l.Rounds, "interleaved rounds; ratios and figures are medians of the rounds'")
	fs.IntVar(&l.Concurrency, "concurrency", l.Concurrency, "requests in flight")
	fs.IntVar(&l.Conns, "conns", l.Conns, "HTTP/2 connections per server")
	fs.IntVar(&l.Distinct, "distinct", l.Distinct, "distinct tokens per algorithm (extauthz's token cache is set to half)")
	fs.BoolVar(&l.Pin, "pin", l.Pin, "run the servers and the load generator on different cores (taskset), when there are 2 or more")
}

// Defaults fit `make bench` in under 10 minutes on 2 cores.
func Defaults() Config {
	return Config{
		Load:       Load{Warmup: 2 * time.Second, Duration: 3 * time.Second, Rounds: 5, Concurrency: 16, Conns: 4, Distinct: 20_000, Pin: true},
		Assertions: 200_000, DPoPProofs: 150_000,
		Peers: true, GoBench: true, GoBenchDur: "300ms",
	}
}

// pair is one scenario on one server.
type pair struct {
	scenario string
	server   string // floor, extauthz, opa, heimdall
	target   *Target
	src      Source
	runs     []*Result
	warm     bool
	// reqs is src's requests in a file, for the load generator processes;
	// pos is where the next run starts in it, once whether src is single-use.
	reqs string
	pos  uint64
	once bool
}

// session is one Run: what each phase makes and a later phase uses. The
// phases run in order, and cleanups undo what they started, last first,
// when Run returns.
type session struct {
	cfg      Config
	rep      *report
	start    time.Time
	logf     func(string, ...any)
	cleanups []func()

	pin *pinning
	dir string // the work directory, with the servers' logs

	// prepareBinaries
	bin, baseBin string
	peers        map[string]string // peer binaries by name

	// prepareTokens and signSingleUse: every request, signed before any
	// load
	idp, client         *mint.Keys
	jwks                []byte
	jwksURL, clientsURL string
	cachedTok           string
	cachedReqs          [][]byte
	distinct            map[string][][]byte // by algorithm
	assertMem           [][]byte
	assertRedis         [][]byte
	dpopClients         []*mint.Key
	dpopReqs            [][]byte

	// startServers
	serversStart                     time.Time
	policyFile, dpopFile             string
	extra                            []string // extauthz's flags beyond its main policy file
	profiled                         bool     // extauthz serves /debug/pprof
	cacheSize                        int
	introspection                    *introspectionEndpoint
	txReqs                           [][]byte
	procs                            []*Process
	floor, bare, ext, base, extRedis *Target
	opaCached, opaDistinct, heim     *Target

	// sanityChecks
	forged                    []byte // the cached token, its signature forged
	targets                   []*Target
	memSrc, redisSrc, dpopSrc *OneShot
	introspectReqs            [][]byte

	// buildPairs and runRounds
	cached Source
	pairs  []*pair
	fixed  []*pair // the open-loop runs that end each round
}

// Run runs the whole bench and writes the report, one phase after the
// other: run_build.go, run_tokens.go, run_servers.go, run_sanity.go and
// run_rounds.go hold them, report_write.go the report's.
func Run(ctx context.Context, cfg Config) error {
	s := newSession(cfg)
	if err := cfg.checkScenarios(); err != nil {
		return err
	}
	defer s.close()
	for _, phase := range []func(context.Context) error{
		s.prepareMachine,
		s.prepareBinaries,
		s.prepareTokens,
		s.signSingleUse,
		s.startServers,
		s.sanityChecks,
		s.buildPairs,
		s.runRounds,
		s.profileCached,
		s.stopServers,
		s.goBenchmarks,
		s.writeReport,
	} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	return nil
}

func newSession(cfg Config) *session {
	start := time.Now()
	s := &session{cfg: cfg, start: start, rep: &report{cfg: cfg, started: start, notes: nil}}
	if cfg.Partial() {
		s.rep.notes = append(s.rep.notes, fmt.Sprintf("A partial run: only the floor and %s (`-scenarios`). Targets and tables lack the scenarios left out.", strings.Join(cfg.Scenarios, ", ")))
	}
	s.logf = func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	return s
}

// onClose registers f to run when Run returns, after the cleanups
// registered later.
func (s *session) onClose(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *session) close() {
	for _, f := range slices.Backward(s.cleanups) {
		f()
	}
}

// note adds a note to the report.
func (s *session) note(n string) { s.rep.notes = append(s.rep.notes, n) }

// prepareMachine plans the cores and makes the work directory.
func (s *session) prepareMachine(context.Context) error {
	s.rep.loadBefore = loadAvg()
	s.pin = planPinning(s.cfg.Pin)
	s.rep.pin = s.pin
	serverPin = s.pin
	s.onClose(func() { serverPin = nil })
	s.logf("cores: %s", s.pin.mode())

	dir, err := os.MkdirTemp("", "extauthz-bench-")
	if err != nil {
		return err
	}
	s.dir = dir
	s.logf("work directory %s (server logs)", dir)
	return nil
}

// stopServers stops every server, so the in-process benchmarks run on a
// machine the servers have left.
func (s *session) stopServers(context.Context) error {
	for _, tg := range s.targets {
		tg.Close()
	}
	for _, p := range s.procs {
		p.Stop()
	}
	s.procs = nil
	return nil
}

// goBenchmarks runs the in-process benchmarks; a failure is a note of the
// report, not the end of the run.
func (s *session) goBenchmarks(ctx context.Context) error {
	if !s.cfg.GoBench {
		return nil
	}
	t := time.Now()
	var err error
	s.rep.gobench, err = runGoBench(ctx, s.cfg, s.logf)
	if err != nil {
		s.note(fmt.Sprintf("The in-process benchmarks failed: %v", err))
		s.logf("go test -bench: %v", err)
	}
	s.rep.timings = append(s.rep.timings, timing{"in-process benchmarks (go test -bench)", time.Since(t)})
	return nil
}

// writeReport writes docs/benchmarks.md and its chart.
func (s *session) writeReport(context.Context) error {
	s.rep.total = time.Since(s.start)
	if err := s.rep.write(); err != nil {
		return err
	}
	s.logf("wrote %s and %s; the servers' logs are in %s", s.cfg.Out, svgPath(s.cfg.Out), s.dir)
	_ = os.Remove(s.bin)
	return nil
}

// Scenario and server names, as the report shows them.
const (
	scFloor       = "floor (no-op server)"
	scBare        = "bare gRPC unary (empty message)"
	scCached      = "cached bearer"
	scAssertMem   = "client assertion, memory replay"
	scAssertRedis = "client assertion, Redis replay"
	scFixed       = "fixed rate, cached bearer"
	scDPoP        = "DPoP: distinct ES256 + proof"
	scTxToken     = "cached bearer + internal token (ES256 signed per Check)"
	scIntrospect  = "cached introspection (opaque token)"

	srvFloor    = "no-op"
	srvExt      = "extauthz"
	srvBase     = "extauthz before"
	srvOPA      = "OPA-Envoy"
	srvOPACache = "OPA-Envoy, io_jwt cache on"
	srvHeimdall = "Heimdall"
)

// servers is every server, in the order tables and the chart show them.
var servers = []string{srvFloor, srvExt, srvBase, srvOPA, srvOPACache, srvHeimdall}

func scDistinct(alg string) string { return "distinct bearer " + alg }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func medianOf(rs []*Result, f func(*Result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
