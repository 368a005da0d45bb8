package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/extauthz/extauthz/bench/mint"
)

// `extauthz-bench outside` is the measurement of issue 13 as a new user
// makes it, small enough to rerun: three processes on this machine (the
// no-op floor, the extauthz binary built from the tree, and the load
// generator, `extauthz-bench load`), Envoy-shaped CheckRequests with seven
// headers over gRPC on loopback, the load generator on other cores than
// the servers. It prints the two ratios. The floor, the load loop,
// the CPU readings, the pinning and the raw verify are `make bench`'s own
// (noop.go, load.go, proc.go, pin.go, run_rounds.go), so the two cannot
// drift apart.

// OutsideConfig is one run of `extauthz-bench outside`.
type OutsideConfig struct {
	Repo string // the repository root: extauthz is built from it, and bench/extauthz/policy.yaml read
	Self string // this program, started as the floor and the load generator
	// Extauthz is an extauthz binary to measure instead of building one.
	Extauthz string
	// Load is the run's shape; Distinct counts ES256 tokens only.
	Load
	Out io.Writer // the summary
	Log io.Writer // progress, a line per run
}

// OutsideDefaults take about 40 seconds after the build.
func OutsideDefaults() OutsideConfig {
	return OutsideConfig{Load: Load{
		Warmup: time.Second, Duration: 3 * time.Second, Rounds: 3,
		Concurrency: 16, Conns: 4, Distinct: 20_000, Pin: true,
	}}
}

// outsideRequest is BearerCheck with seven headers: the pseudo-headers, the
// credential, and what every client and Envoy add.
func outsideRequest(token string, seq int) []byte {
	c := BearerCheck(token, seq)
	h := c.Attributes.Request.Http.Headers
	keep := map[string]bool{":authority": true, ":method": true, ":path": true, ":scheme": true,
		"authorization": true, "user-agent": true, "x-request-id": true}
	for k := range h {
		if !keep[k] {
			delete(h, k)
		}
	}
	return marshal(c)
}

// outsidePolicy is bench/extauthz/policy.yaml (a token route and an API
// route, one header each) with its JWK Sets inline.
func outsidePolicy(repo string, idp, client []byte) (string, error) {
	b, err := os.ReadFile(filepath.Join(repo, "bench", "extauthz", "policy.yaml"))
	if err != nil {
		return "", err
	}
	s := string(b)
	for _, r := range []struct{ from, to string }{
		{"jwks_uri: {{JWKS_URL}}", "jwks: " + string(idp)},
		{"jwks_uri: {{CLIENTS_URL}}", "jwks: " + string(client)},
	} {
		if !strings.Contains(s, r.from) {
			return "", fmt.Errorf("bench: outside: bench/extauthz/policy.yaml has no %q", r.from)
		}
		s = strings.ReplaceAll(s, r.from, r.to)
	}
	return s, nil
}

// separateRun is the set-up `outside` and `ab` share: the run's shape
// checked, a temporary directory for the servers' logs (removed when the
// run succeeds, else named in the log) and the cores planned.
type separateRun struct {
	dir  string
	pin  *pinning
	logf func(format string, args ...any)
	ok   bool // set when the run succeeded
}

func newSeparateRun(cmd string, l Load, log io.Writer) (*separateRun, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(log, format+"\n", args...) }
	if l.Rounds < 1 || l.Duration <= 0 || l.Distinct < 2 || l.Concurrency < 1 || l.Conns < 1 {
		return nil, fmt.Errorf("bench: %s: -rounds, -duration, -concurrency, -conns must be positive and -distinct at least 2", cmd)
	}
	dir, err := os.MkdirTemp("", "extauthz-"+cmd+"-")
	if err != nil {
		return nil, err
	}
	pin := planPinning(l.Pin)
	serverPin = pin
	logf("cores: %s", pin.mode())
	return &separateRun{dir: dir, pin: pin, logf: logf}, nil
}

func (r *separateRun) close() {
	serverPin = nil
	if r.ok {
		os.RemoveAll(r.dir)
	} else {
		r.logf("the servers' logs are in %s", r.dir)
	}
}

// outsideFixtures are what the servers of `outside` and `ab` are given:
// the idp's ES256 key, the request files of the cached token (256 requests)
// and of distinct tokens, and the policy.
type outsideFixtures struct {
	es                       *mint.Key
	cached, distinct, policy string
}

// newOutsideFixtures makes keys, tokens and requests in dir, all before
// any server starts.
func newOutsideFixtures(dir, repo string, distinct int) (*outsideFixtures, error) {
	idp, err := mint.NewKeys("idp", "ES256")
	if err != nil {
		return nil, err
	}
	client, err := mint.NewKeys("client", "ES256")
	if err != nil {
		return nil, err
	}
	es := idp.ByAlg["ES256"]
	claims := bearerClaims(time.Now().Truncate(time.Second))
	cachedTok, err := es.Sign("at+jwt", claims(-1))
	if err != nil {
		return nil, err
	}
	toks, err := es.SignMany(distinct, "at+jwt", claims)
	if err != nil {
		return nil, err
	}
	cachedReqs := make([][]byte, 256)
	for i := range cachedReqs {
		cachedReqs[i] = outsideRequest(cachedTok, i)
	}
	distinctReqs := make([][]byte, len(toks))
	for i, tok := range toks {
		distinctReqs[i] = outsideRequest(tok, i)
	}
	fx := &outsideFixtures{es: es, cached: filepath.Join(dir, "cached.req"), distinct: filepath.Join(dir, "distinct.req")}
	if err := writeRequests(fx.cached, cachedReqs); err != nil {
		return nil, err
	}
	if err := writeRequests(fx.distinct, distinctReqs); err != nil {
		return nil, err
	}
	policy, err := outsidePolicy(repo, idp.JWKS(), client.JWKS())
	if err != nil {
		return nil, err
	}
	if fx.policy, err = writeFile(dir, "policy.yaml", policy); err != nil {
		return nil, err
	}
	return fx, nil
}

// outsideScenario is one scenario on one server, measured round by round.
type outsideScenario struct {
	name   string
	target *Target
	reqs   string // the request file
	pos    uint64 // where the next round starts in it
	runs   []*Result
}

// RunOutside is `extauthz-bench outside`.
func RunOutside(ctx context.Context, cfg OutsideConfig) error {
	run, err := newSeparateRun("outside", cfg.Load, cfg.Log)
	if err != nil {
		return err
	}
	defer run.close()
	dir, pin, logf := run.dir, run.pin, run.logf

	bin := cfg.Extauthz
	if bin == "" {
		bin = filepath.Join(dir, "extauthz")
		t := time.Now()
		if out, err := goCmd(ctx, cfg.Repo, "build", "-o", bin, "./cmd/extauthz").CombinedOutput(); err != nil {
			return fmt.Errorf("bench: go build ./cmd/extauthz: %v\n%s", err, out)
		}
		logf("built extauthz in %s", time.Since(t).Round(time.Millisecond))
	}

	fx, err := newOutsideFixtures(dir, cfg.Repo, cfg.Distinct)
	if err != nil {
		return err
	}
	es, cachedFile, distinctFile, policyFile := fx.es, fx.cached, fx.distinct, fx.policy

	floor, err := startNoop("noop", dir, cfg.Self)
	if err != nil {
		return err
	}
	defer floor.Proc.Stop()
	var extra []string
	if ExtauthzHasFlag(bin, "token-cache-size") {
		extra = append(extra, "--token-cache-size", strconv.Itoa(cfg.Distinct/2))
	}
	ext, err := startExtauthz(ctx, "extauthz", dir, bin, policyFile, extra...)
	if err != nil {
		return err
	}
	defer ext.Proc.Stop()

	// The floor between the two extauthz scenarios, as in make bench: a
	// slowdown of the machine falls on the floor and its neighbours alike.
	scs := []*outsideScenario{
		{name: "floor (no-op)", target: floor, reqs: cachedFile},
		{name: "extauthz, cached ES256", target: ext, reqs: cachedFile},
		{name: "extauthz, distinct ES256", target: ext, reqs: distinctFile},
	}
	// And each round the floor and extauthz on the cached token at the
	// same time, each with half the requests in flight, as make bench
	// does (runSameTime).
	half := cfg
	half.Concurrency = max(1, cfg.Concurrency/2)
	sameFloor := &outsideScenario{name: "floor, same time", target: floor, reqs: cachedFile}
	sameExt := &outsideScenario{name: "extauthz, same time", target: ext, reqs: cachedFile}
	var raws, same []float64
	for round := 1; round <= cfg.Rounds; round++ {
		raws = append(raws, rawVerify(es, 150*time.Millisecond))
		for _, sc := range scs {
			warm := time.Duration(0)
			if round == 1 {
				warm = cfg.Warmup
			}
			lr, err := runLoadProcess(ctx, cfg, pin, sc, warm)
			if err != nil {
				return err
			}
			r := lr.result()
			if r.Denied > 0 || r.Errors > 0 || r.Checks == 0 {
				return fmt.Errorf("bench: outside: %s: %d checks, %d denied, %d errors: every Check should be allowed", sc.name, r.Checks, r.Denied, r.Errors)
			}
			sc.runs = append(sc.runs, r)
			logf("round %d  %-26s %8.0f checks/s  server %6.1f µs/check  p50 %6.0f µs  p99 %6.0f µs  load generator %5.1f µs/check",
				round, sc.name, r.Rate(), us(r.CPUPerCheck()), us(time.Duration(lr.P50NS)), us(time.Duration(lr.P99NS)), us(r.LoadCPUPerCheck()))
		}
		f, e, err := runAtOnce(ctx, half, pin, sameFloor, sameExt, 0, round%2 == 0)
		if err != nil {
			return fmt.Errorf("bench: outside: same time: %w", err)
		}
		same = append(same, cpu(f)/cpu(e))
		logf("round %d  same time: floor %6.1f µs/check, extauthz cached %6.1f µs/check", round, cpu(f), cpu(e))
	}
	cores := runtime.NumCPU()
	if pin.on {
		cores = len(pin.server)
	}
	writeOutsideSummary(cfg.Out, cfg, pin, cores, scs[0].runs, scs[1].runs, scs[2].runs, raws, same)
	run.ok = true
	return nil
}

// runLoadProcess runs one round of a scenario in a new load-generator
// process, which moves itself to the load generator's cores when the run
// pins (this process is not pinned, so the child plans the same split).
func runLoadProcess(ctx context.Context, cfg OutsideConfig, pin *pinning, sc *outsideScenario, warm time.Duration) (*loadResult, error) {
	lr, err := loadProcess(ctx, cfg.Self, sc.load(cfg, pin, warm))
	if err != nil {
		return nil, fmt.Errorf("bench: outside: load generator on %s: %w", sc.name, err)
	}
	sc.pos += uint64(lr.Sent)
	return lr, nil
}

// load is the load generator run of one round of sc.
func (sc *outsideScenario) load(cfg OutsideConfig, pin *pinning, warm time.Duration) LoadConfig {
	return LoadConfig{
		Addr: sc.target.Addr, Pid: sc.target.Proc.Pid(), Requests: sc.reqs, Start: sc.pos,
		Concurrency: cfg.Concurrency, Conns: cfg.Conns, Warmup: warm, Duration: cfg.Duration, Pin: pin.on,
	}
}

// loadProcess runs `self load` as c says and reads the line it prints.
func loadProcess(ctx context.Context, self string, c LoadConfig) (*loadResult, error) {
	cmd := exec.CommandContext(ctx, self, c.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, errOut.String())
	}
	var lr loadResult
	if err := json.Unmarshal(out.Bytes(), &lr); err != nil {
		return nil, fmt.Errorf("printed %q: %w", out.String(), err)
	}
	return &lr, nil
}

// writeOutsideSummary prints the medians and the two ratios, each
// the median of its per-round values (a round's scenarios ran within
// seconds of each other).
func writeOutsideSummary(w io.Writer, cfg OutsideConfig, pin *pinning, cores int, floor, cached, distinct []*Result, raws, same []float64) {
	med := func(rs []*Result, f func(*Result) float64) float64 { return medianOf(rs, f) }
	fmt.Fprintf(w, "extauthz-bench outside: %d round(s) of %s per scenario, the load generator in its own process, %d in flight on %d connection(s); %s\n",
		cfg.Rounds, cfg.Duration, cfg.Concurrency, cfg.Conns, pin.mode())
	for _, s := range []struct {
		name string
		rs   []*Result
	}{{"floor (no-op)", floor}, {"extauthz, cached ES256", cached}, {"extauthz, distinct ES256", distinct}} {
		fmt.Fprintf(w, "  %-26s server %6.1f µs/Check  %8.0f checks/s\n", s.name, med(s.rs, cpu), med(s.rs, rate))
	}
	raw := median(raws)
	fmt.Fprintf(w, "  %-26s %6.1f µs (in process, one thread)\n", "raw ES256 verify", raw)
	cpuRatio, _ := perRound(cached, floor, floorCPURatio)
	rateRatio, _ := perRound(cached, floor, func(x, y *Result) float64 { return rate(x) / rate(y) })
	fmt.Fprintf(w, "cached ÷ floor: %.2f on server CPU per Check (the floor's µs ÷ extauthz's), %.2f on checks/s (target ≥ 0.92)\n", cpuRatio, rateRatio)
	if len(same) > 0 {
		fmt.Fprintf(w, "cached ÷ floor, the two at the same time: %.2f on server CPU per Check (%.2f to %.2f over the rounds)\n", median(same), slices.Min(same), slices.Max(same))
	}
	n := min(len(distinct), len(floor), len(raws))
	rates, cpus, preds := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		pred := cpu(floor[i]) + raws[i]
		preds[i] = 1e6 / pred * float64(cores)
		rates[i] = rate(distinct[i]) / preds[i]
		cpus[i] = pred / cpu(distinct[i])
	}
	fmt.Fprintf(w, "distinct ES256 ÷ predicted: %.2f on checks/s (%.0f against %.0f, %d server core(s) at the floor's µs + one raw verify per Check), %.2f on server CPU per Check (target ≥ 0.90)\n",
		median(rates), med(distinct, rate), median(preds), cores, median(cpus))
}
