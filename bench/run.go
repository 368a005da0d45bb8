// Package bench is `make bench`: it builds extauthz, starts it and its peers
// (OPA-Envoy, Heimdall) and a no-op ext_authz server as separate processes
// on loopback, drives each with the same Envoy-shaped CheckRequests over
// real gRPC, measures checks/s, latency and server CPU per Check, runs the
// in-process Go benchmarks, and writes docs/benchmarks.md with a chart.
package bench

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

	Warmup      time.Duration // before a pair's first round
	Duration    time.Duration // each measured round
	Rounds      int
	Concurrency int // requests in flight (closed loop)
	Conns       int // HTTP/2 connections per server
	// Distinct is the number of distinct tokens per algorithm; extauthz's
	// token cache is set to half of it, so cycling through them never hits.
	Distinct int
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
	// Pin puts the servers and the load generator on different cores
	// (taskset), when the machine allows.
	Pin bool
	// DebugPprof starts extauthz with --debug-pprof, so its CPU can be
	// profiled under the bench's load (the log names its HTTP address).
	DebugPprof bool
	// Baseline is a git revision whose extauthz runs beside this one in the
	// cached and new-ES256 scenarios, for a before/after in one run.
	Baseline   string
	GoBench    bool // run the in-process benchmarks
	GoBenchDur string

	Log io.Writer
}

// Defaults fit `make bench` in under 10 minutes on 2 cores.
func Defaults() Config {
	return Config{
		Warmup: 2 * time.Second, Duration: 3 * time.Second, Rounds: 5,
		Concurrency: 16, Conns: 4, Distinct: 20_000, Assertions: 200_000, DPoPProofs: 150_000,
		Peers: true, Pin: true, GoBench: true, GoBenchDur: "300ms",
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
}

// Run runs the whole bench and writes the report.
func Run(ctx context.Context, cfg Config) (err error) {
	start := time.Now()
	if err := cfg.checkScenarios(); err != nil {
		return err
	}
	rep := &report{cfg: cfg, started: start, notes: nil}
	if cfg.Partial() {
		rep.notes = append(rep.notes, fmt.Sprintf("A partial run: only the floor and %s (`-scenarios`). Targets and tables lack the scenarios left out.", strings.Join(cfg.Scenarios, ", ")))
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	rep.loadBefore = loadAvg()
	pin := planPinning(cfg.Pin)
	rep.pin = pin
	serverPin = pin
	defer func() { serverPin = nil }()
	logf("cores: %s", pin.mode())

	dir, err := os.MkdirTemp("", "extauthz-bench-")
	if err != nil {
		return err
	}
	logf("work directory %s (server logs)", dir)

	// 1. Binaries.
	bin := filepath.Join(dir, "extauthz")
	t := time.Now()
	if out, err := goCmd(ctx, cfg.Repo, "build", "-o", bin, "./cmd/extauthz").CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build ./cmd/extauthz: %v\n%s", err, out)
	}
	rep.timings = append(rep.timings, timing{"go build ./cmd/extauthz", time.Since(t)})
	logf("built extauthz in %s", time.Since(t).Round(time.Millisecond))
	var baseBin string
	if cfg.Baseline != "" {
		t = time.Now()
		if baseBin, err = buildBaseline(ctx, cfg.Repo, dir, cfg.Baseline); err != nil {
			return err
		}
		rep.baseline = cfg.Baseline
		rep.timings = append(rep.timings, timing{"go build ./cmd/extauthz at " + cfg.Baseline, time.Since(t)})
		logf("built extauthz at %s in %s", cfg.Baseline, time.Since(t).Round(time.Millisecond))
	}
	peers := map[string]string{}
	if cfg.Peers && cfg.wantsPeers() {
		t = time.Now()
		peers, err = buildPeers(ctx, cfg, logf)
		rep.timings = append(rep.timings, timing{"bench/build-peers.sh", time.Since(t)})
		if err != nil {
			rep.notes = append(rep.notes, fmt.Sprintf("The peers could not be built, so this run has none: %v", err))
			logf("peers: %v", err)
		}
	}
	rep.peerVersions = peerVersions(cfg.Repo)

	// 2. Keys, the JWKS server, and every token, signed before any load.
	t = time.Now()
	bs, signed, err := loadBearerSet(filepath.Join(toolsDir(), "bench-tokens"), cfg.Distinct, logf)
	if err != nil {
		return err
	}
	idp := bs.keys
	client, err := mint.NewKeys("client", "ES256")
	if err != nil {
		return err
	}
	jwks, clientJWKS := idp.JWKS(), client.JWKS()
	jwksURL, clientsURL, stopJWKS, err := serveJWKS(jwks, clientJWKS)
	if err != nil {
		return err
	}
	defer stopJWKS()
	cachedTok := bs.Cached
	cachedReqs := make([][]byte, 256)
	for i := range cachedReqs {
		cachedReqs[i] = BearerRequest(cachedTok, i)
	}
	distinct := map[string][][]byte{}
	for _, alg := range mint.Algs {
		reqs := make([][]byte, len(bs.Distinct[alg]))
		for i, tok := range bs.Distinct[alg] {
			reqs[i] = BearerRequest(tok, i)
		}
		distinct[alg] = reqs
	}
	what := "bearer tokens signed"
	if !signed {
		what = fmt.Sprintf("bearer tokens loaded (signed %s ago)", time.Since(bs.Created).Round(time.Minute))
		rep.notes = append(rep.notes, fmt.Sprintf("The bearer tokens and their keys were signed by an earlier run, %s ago, and kept in `${EXTAUTHZ_TOOLS:-$HOME/.cache/extauthz-tools}/bench-tokens/`: signing 2 × %d RSA tokens again would cost a minute of the cores. Delete it to sign anew.",
			time.Since(bs.Created).Round(time.Minute), cfg.Distinct))
	}
	rep.timings = append(rep.timings, timing{fmt.Sprintf("keys, and 1 + 4 × %d %s", cfg.Distinct, what), time.Since(t)})
	t = time.Now()
	now := time.Now()
	assertions := func(store string) ([][]byte, error) {
		toks, err := client.ByAlg["ES256"].SignMany(cfg.Assertions, "", func(i int) map[string]any {
			return map[string]any{
				"iss": ClientID, "sub": ClientID, "aud": TokenEndpoint,
				"iat": now.Unix(), "exp": now.Add(20 * time.Minute).Unix(),
				"jti": fmt.Sprintf("%s-%016x-%08x", store, now.UnixNano(), i),
			}
		})
		if err != nil {
			return nil, err
		}
		reqs := make([][]byte, len(toks))
		for i, tok := range toks {
			reqs[i] = AssertionRequest(tok, i)
		}
		return reqs, nil
	}
	var assertMem, assertRedis [][]byte
	if cfg.wants(keyAssertMem) {
		if assertMem, err = assertions("mem"); err != nil {
			return err
		}
	}
	if cfg.wants(keyAssertRedis) {
		if assertRedis, err = assertions("redis"); err != nil {
			return err
		}
	}
	if n := len(assertMem) + len(assertRedis); n > 0 {
		rep.timings = append(rep.timings, timing{fmt.Sprintf("%d client assertions signed", n), time.Since(t)})
		logf("signed the client assertions in %s", time.Since(t).Round(time.Millisecond))
	}
	// DPoP: client keys of their own; each token bound to one and sent
	// once with its own proof.
	dpopClients, err := NewDPoPClients()
	if err != nil {
		return err
	}
	var dpopReqs [][]byte
	if cfg.wants(keyDPoP) {
		t = time.Now()
		if dpopReqs, err = dpopRequests(idp.ByAlg["ES256"], dpopClients, cfg.DPoPProofs); err != nil {
			return err
		}
		rep.timings = append(rep.timings, timing{fmt.Sprintf("%d DPoP-bound tokens and their proofs signed", cfg.DPoPProofs), time.Since(t)})
		logf("signed %d DPoP-bound tokens and proofs in %s", cfg.DPoPProofs, time.Since(t).Round(time.Millisecond))
	}

	// 3. Servers.
	t = time.Now()
	var procs []*Process
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	policy, err := render(cfg.Repo, "extauthz/policy.yaml", map[string]string{"JWKS_URL": jwksURL, "CLIENTS_URL": clientsURL})
	if err != nil {
		return err
	}
	policyFile, err := writeFile(dir, "policy.yaml", policy)
	if err != nil {
		return err
	}
	dpopFile, err := writeFile(dir, "policy-dpop.yaml", DPoPPolicy)
	if err != nil {
		return err
	}
	extra := []string{"--policy", dpopFile}
	// Only the extauthz under test gets the introspection rule: a baseline
	// build may predate introspection issuers.
	var introspection *introspectionEndpoint
	if cfg.wants(keyIntrospect) {
		if introspection, err = serveIntrospection(); err != nil {
			return err
		}
		defer introspection.stop()
		secret, err := writeFile(dir, "introspection-secret", introspectSecret)
		if err != nil {
			return err
		}
		f, err := writeFile(dir, "policy-introspection.yaml", introspectPolicy(introspection.url, secret))
		if err != nil {
			return err
		}
		extra = append(extra, "--policy", f)
	}
	if cfg.DebugPprof {
		extra = append(extra, "--debug-pprof")
	}
	var txReqs [][]byte
	if cfg.wants(keyTxToken) && ExtauthzHasFlag(bin, "token-keys") {
		tx, err := txTokenFlags(dir)
		if err != nil {
			return err
		}
		extra = append(extra, tx...)
		txReqs = [][]byte{TxRequest(cachedTok, 0)}
	}
	cacheSize := cfg.Distinct / 2
	if ExtauthzHasFlag(bin, "token-cache-size") {
		extra = append(extra, "--token-cache-size", fmt.Sprint(cacheSize))
		rep.tokenCache = cacheSize
	} else {
		rep.notes = append(rep.notes, "This extauthz has no --token-cache-size flag: the cached-bearer scenario verifies its token on every Check.")
	}
	floor, err := startNoop(dir, cfg.Self)
	if err != nil {
		return err
	}
	procs = append(procs, floor.Proc)
	// The floor's process also serves an empty unary method: the bare cost
	// of a gRPC call on this machine.
	bare := &Target{Name: "bare gRPC unary", Addr: floor.Addr, Proc: floor.Proc, Method: BareMethod}
	ext, err := startExtauthz(ctx, "extauthz", dir, bin, policyFile, extra...)
	if err != nil {
		return err
	}
	procs = append(procs, ext.Proc)
	if cfg.DebugPprof {
		logf("extauthz profiles: go tool pprof http://%s/debug/pprof/profile?seconds=10", ext.HTTPAddr)
	}
	var base *Target
	if baseBin != "" {
		bextra := []string{"--policy", dpopFile}
		if ExtauthzHasFlag(baseBin, "token-cache-size") {
			bextra = append(bextra, "--token-cache-size", fmt.Sprint(cacheSize))
		}
		if base, err = startExtauthz(ctx, "extauthz-baseline", dir, baseBin, policyFile, bextra...); err != nil {
			return err
		}
		procs = append(procs, base.Proc)
	}
	var extRedis *Target
	if cfg.wants(keyAssertRedis) {
		redisProc, redisAddr, err := startRedis(ctx, dir)
		if err != nil {
			rep.notes = append(rep.notes, fmt.Sprintf("No Redis scenario: %v", err))
			logf("redis: %v", err)
		} else {
			procs = append(procs, redisProc)
			extRedis, err = startExtauthz(ctx, "extauthz-redis", dir, bin, policyFile,
				append(slices.Clone(extra), "--replay-store", "redis://"+redisAddr+"/0")...)
			if err != nil {
				return err
			}
			procs = append(procs, extRedis.Proc)
		}
	}
	var opaCached, opaDistinct, heim *Target
	if bin := peers["opa-envoy-plugin"]; bin != "" {
		for _, cached := range []bool{true, false} {
			name := "opa-envoy"
			if !cached {
				name = "opa-envoy-nocache"
			}
			tg, err := startOPA(ctx, name, dir, cfg.Repo, bin, jwks, cached)
			if err != nil {
				rep.notes = append(rep.notes, fmt.Sprintf("OPA-Envoy did not start, so this run has no OPA numbers: %v", firstLine(err)))
				logf("opa: %v", err)
				break
			}
			procs = append(procs, tg.Proc)
			if cached {
				opaCached = tg
			} else {
				opaDistinct = tg
			}
		}
	}
	if bin := peers["heimdall"]; bin != "" {
		heim, err = startHeimdall(ctx, dir, cfg.Repo, bin, jwksURL)
		if err != nil {
			rep.notes = append(rep.notes, fmt.Sprintf("Heimdall did not start, so this run has no Heimdall numbers: %v", firstLine(err)))
			logf("heimdall: %v", err)
			heim = nil
		} else {
			procs = append(procs, heim.Proc)
		}
	}
	rep.timings = append(rep.timings, timing{"servers started", time.Since(t)})
	logf("servers ready in %s", time.Since(t).Round(time.Millisecond))

	// 4. Every server must allow the good requests and deny a forged token,
	// or its numbers would mean nothing.
	bad := BearerRequest(tamper(cachedTok), 0)
	var targets []*Target
	for _, tg := range []*Target{floor, bare, ext, base, extRedis, opaCached, opaDistinct, heim} {
		if tg == nil {
			continue
		}
		if err := tg.Dial(cfg.Conns); err != nil {
			return err
		}
		defer tg.Close()
		targets = append(targets, tg)
	}
	sanity := func(tg *Target, allow [][]byte) error {
		for i, req := range allow {
			code, err := tg.Check(ctx, 0, req)
			if err != nil || code != 0 {
				return fmt.Errorf("bench: %s does not allow good request %d (code %d, err %v); log: %s", tg.Name, i, code, err, tg.Proc.log)
			}
		}
		if tg == floor {
			return nil
		}
		if code, err := tg.Check(ctx, 0, bad); err != nil || code == 0 {
			return fmt.Errorf("bench: %s allows a token with a forged signature (code %d, err %v)", tg.Name, code, err)
		}
		return nil
	}
	firsts := func() [][]byte {
		out := [][]byte{cachedReqs[0]}
		for _, alg := range mint.Algs {
			out = append(out, distinct[alg][len(distinct[alg])-1])
		}
		return out
	}()
	dropPeer := func(tg **Target, err error) {
		rep.notes = append(rep.notes, fmt.Sprintf("%s failed its sanity check and was left out: %v", (*tg).Name, err))
		logf("%v", err)
		(*tg).Proc.Stop()
		*tg = nil
	}
	for _, tg := range []*Target{floor, ext, base, extRedis} {
		if tg == nil {
			continue
		}
		if err := sanity(tg, firsts); err != nil {
			return err
		}
	}
	if code, err := bare.Check(ctx, 0, nil); err != nil || code != 0 {
		return fmt.Errorf("bench: the bare unary method fails (code %d, err %v); log: %s", code, err, floor.Proc.log)
	}
	for _, tg := range []**Target{&opaCached, &opaDistinct, &heim} {
		if *tg == nil {
			continue
		}
		if err := sanity(*tg, firsts); err != nil {
			dropPeer(tg, err)
		}
	}
	// The one-shot pools lose the requests used here.
	memSrc, redisSrc := NewOneShot(assertMem), NewOneShot(assertRedis)
	for _, x := range []struct {
		tg  *Target
		src *OneShot
	}{{ext, memSrc}, {extRedis, redisSrc}} {
		if x.tg == nil || x.src.Left() == 0 {
			continue
		}
		req, _ := x.src.Next()
		if code, err := x.tg.Check(ctx, 0, req); err != nil || code != 0 {
			return fmt.Errorf("bench: %s does not allow a client assertion (code %d, err %v); log: %s", x.tg.Name, code, err, x.tg.Proc.log)
		}
		if code, err := x.tg.Check(ctx, 0, req); err != nil || code == 0 {
			return fmt.Errorf("bench: %s allows a replayed client assertion (code %d, err %v)", x.tg.Name, code, err)
		}
	}
	dpopSrc := NewOneShot(dpopReqs)
	if dpopSrc.Left() > 0 {
		if err := sanityDPoP(ctx, ext, dpopSrc, idp.ByAlg["ES256"], dpopClients); err != nil {
			return err
		}
	}
	var introspectReqs [][]byte
	if introspection != nil {
		introspectReqs = introspectRequests()
		if err := sanityIntrospect(ctx, ext, introspectReqs, introspection); err != nil {
			return err
		}
	}
	logf("every server allows the good requests and denies forged or replayed ones")

	// 5. The pairs, in the order each round visits them.
	var pairs []*pair
	add := func(scenario, server string, tg *Target, src Source) {
		if tg != nil && cfg.wants(scenarioKey(scenario)) {
			pairs = append(pairs, &pair{scenario: scenario, server: server, target: tg, src: src})
		}
	}
	cached := NewCycle(cachedReqs)
	// The order puts what the targets compare side by side in time, so a
	// slowdown of the machine between rounds falls on both: the floor
	// between the cached bearer and new ES256 tokens, each peer right after
	// extauthz on the same tokens. Each server gets its own cursor over the
	// distinct tokens, so each sees every token in the same order.
	distinctSrc := func(alg string) Source { return NewCycle(distinct[alg]) }
	add(scCached, srvExt, ext, cached)
	add(scCached, srvBase, base, cached)
	add(scFloor, srvFloor, floor, cached)
	add(scBare, srvFloor, bare, NewCycle([][]byte{nil}))
	add(scDistinct("ES256"), srvExt, ext, distinctSrc("ES256"))
	add(scDistinct("ES256"), srvBase, base, distinctSrc("ES256"))
	add(scDistinct("ES256"), srvOPA, opaDistinct, distinctSrc("ES256"))
	add(scDistinct("ES256"), srvHeimdall, heim, distinctSrc("ES256"))
	add(scDPoP, srvExt, ext, dpopSrc)
	add(scIntrospect, srvExt, ext, NewCycle(introspectReqs))
	// OPA-Envoy twice on the cached token: its io_jwt cache may or may not
	// pay off.
	add(scCached, srvOPA, opaDistinct, cached)
	add(scCached, srvOPACache, opaCached, cached)
	add(scCached, srvHeimdall, heim, cached)
	for _, alg := range mint.Algs[1:] {
		sc := scDistinct(alg)
		add(sc, srvExt, ext, distinctSrc(alg))
		add(sc, srvOPA, opaDistinct, distinctSrc(alg))
		add(sc, srvHeimdall, heim, distinctSrc(alg))
	}
	if len(txReqs) > 0 {
		if err := sanity(ext, txReqs); err != nil {
			return err
		}
		add(scTxToken, srvExt, ext, NewCycle(txReqs))
	}
	add(scAssertMem, srvExt, ext, memSrc)
	add(scAssertRedis, srvExt, extRedis, redisSrc)

	// What the rest of the machine does meanwhile is noise in every number:
	// the report says how much of it there was.
	ours := func() time.Duration {
		d := selfCPU()
		for _, p := range procs {
			if c, err := p.CPU(); err == nil {
				d += c
			}
		}
		return d
	}
	busy0, ours0, wall0 := machineBusy(), ours(), time.Now()
	rep.rawVerify = map[string][]float64{}
	// Each round ends with the open-loop runs: the floor and the cached
	// bearer at half the rate the floor reached in that round (latency at
	// a moderate load), so they too are spread over the whole run.
	fixed := []*pair{
		{scenario: scFixed, server: srvFloor, target: floor, src: cached},
		{scenario: scFixed, server: srvExt, target: ext, src: cached},
	}
	if !cfg.wants(keyFixed) {
		fixed = nil
	}
	const maxInFlight = 64
	if err := pin.pinSelf(); err != nil {
		return err
	}
	defer pin.unpinSelf()
	for round := 1; round <= cfg.Rounds; round++ {
		rawVerifyAll(idp, rep.rawVerify)
		var floorRate float64
		for _, p := range pairs {
			if !p.warm {
				if _, err := ClosedLoop(ctx, p.target, p.src, cfg.Concurrency, cfg.Warmup); err != nil {
					return err
				}
				p.warm = true
			}
			r, err := ClosedLoop(ctx, p.target, p.src, cfg.Concurrency, cfg.Duration)
			if err != nil {
				return err
			}
			p.runs = append(p.runs, r)
			if p.scenario == scFloor {
				floorRate = r.Rate()
			}
			logf("round %d  %-24s %-10s %8.0f checks/s  p50 %6.0fµs  p99 %6.0fµs  server %5.1fµs/check  denied %d errors %d%s",
				round, p.scenario, p.server, r.Rate(), us(r.Percentile(50)), us(r.Percentile(99)), us(r.CPUPerCheck()), r.Denied, r.Errors,
				map[bool]string{true: "  (pool exhausted)", false: ""}[r.Exhausted])
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		for _, p := range fixed {
			rate := floorRate / 2
			if !p.warm {
				if _, err := FixedRate(ctx, p.target, p.src, rate, maxInFlight, cfg.Warmup/2); err != nil {
					return err
				}
				p.warm = true
			}
			r, err := FixedRate(ctx, p.target, p.src, rate, maxInFlight, cfg.Duration)
			if err != nil {
				return err
			}
			r.Rate0 = rate
			p.runs = append(p.runs, r)
			logf("round %d  %-24s %-10s %8.0f checks/s  p50 %6.0fµs  p99 %6.0fµs  server %5.1fµs/check  denied %d errors %d",
				round, fmt.Sprintf("fixed %.0f/s", rate), p.server, r.Rate(), us(r.Percentile(50)), us(r.Percentile(99)), us(r.CPUPerCheck()), r.Denied, r.Errors)
		}
	}
	pin.unpinSelf()
	pairs = append(pairs, fixed...)
	if busy0 > 0 {
		other := (machineBusy() - busy0) - (ours() - ours0)
		rep.otherCores = max(0, other.Seconds()/time.Since(wall0).Seconds())
	}
	rep.pairs = pairs
	rep.loadAfter = loadAvg()
	rep.loadDuration = time.Since(t)

	for _, tg := range targets {
		tg.Close()
	}
	for _, p := range procs {
		p.Stop()
	}
	procs = nil

	// 7. The in-process benchmarks, on a machine the servers have left.
	if cfg.GoBench {
		t = time.Now()
		rep.gobench, err = runGoBench(ctx, cfg, logf)
		if err != nil {
			rep.notes = append(rep.notes, fmt.Sprintf("The in-process benchmarks failed: %v", err))
			logf("go test -bench: %v", err)
		}
		rep.timings = append(rep.timings, timing{"in-process benchmarks (go test -bench)", time.Since(t)})
	}
	rep.total = time.Since(start)
	if err := rep.write(); err != nil {
		return err
	}
	logf("wrote %s and %s; the servers' logs are in %s", cfg.Out, svgPath(cfg.Out), dir)
	_ = os.Remove(bin)
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

func goCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	return cmd
}

// buildBaseline builds ./cmd/extauthz at rev, in a worktree of its own.
func buildBaseline(ctx context.Context, repo, dir, rev string) (string, error) {
	wt := filepath.Join(dir, "baseline-src")
	if out, err := exec.CommandContext(ctx, "git", "-C", repo, "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: git worktree add %s: %v\n%s", rev, err, out)
	}
	defer func() {
		_ = exec.Command("git", "-C", repo, "worktree", "remove", "--force", wt).Run()
	}()
	bin := filepath.Join(dir, "extauthz-baseline")
	if out, err := goCmd(ctx, wt, "build", "-o", bin, "./cmd/extauthz").CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: go build ./cmd/extauthz at %s: %v\n%s", rev, err, out)
	}
	return bin, nil
}

// buildPeers runs bench/build-peers.sh (which skips what it has built
// before) and returns each binary by name.
func buildPeers(ctx context.Context, cfg Config, logf func(string, ...any)) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(cfg.Repo, "bench", "build-peers.sh"))
	cmd.Dir = cfg.Repo
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = cfg.Log
	err := cmd.Run()
	peers := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if name, path, ok := strings.Cut(sc.Text(), "="); ok {
			peers[name] = path
			logf("peer %s: %s", name, path)
		}
	}
	if err != nil {
		return peers, fmt.Errorf("bench/build-peers.sh: %w", err)
	}
	return peers, nil
}

// peerVersions reads the peers' versions from bench/peers/go.mod.
func peerVersions(repo string) map[string]string {
	b, err := os.ReadFile(filepath.Join(repo, "bench", "peers", "go.mod"))
	out := map[string]string{}
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			switch f[0] {
			case "github.com/open-policy-agent/opa-envoy-plugin":
				out[srvOPA] = f[1]
			case "github.com/dadrus/heimdall":
				out[srvHeimdall] = f[1]
			case "github.com/open-policy-agent/opa":
				out["OPA"] = f[1]
			}
		}
	}
	return out
}

// serveJWKS serves the bearer issuer's JWKS and the client's on loopback.
func serveJWKS(jwks, clients []byte) (jwksURL, clientsURL string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	mux := http.NewServeMux()
	serve := func(doc []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(doc)
		}
	}
	mux.Handle("GET /jwks", serve(jwks))
	mux.Handle("GET /clients", serve(clients))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	base := "http://" + l.Addr().String()
	return base + "/jwks", base + "/clients", func() { srv.Close() }, nil
}

// tamper flips a bit of the signature's first byte.
func tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	sig[0] ^= 1
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// rawVerify is the floor of any verifier of alg: the hash of a token's
// signing input and the standard library's verify (ECDSA with the signature
// already in DER), on one locked thread, timed by that thread's CPU clock.
// It returns µs per verify.
func rawVerify(k *mint.Key, d time.Duration) float64 {
	tok, _ := k.Sign("at+jwt", map[string]any{"iss": Issuer, "aud": Audience, "scope": "read", "exp": time.Now().Add(time.Hour).Unix()})
	dot := strings.LastIndexByte(tok, '.')
	msg := []byte(tok[:dot])
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	var verify func() bool
	switch pub := k.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		der, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
		verify = func() bool {
			h := sha256.Sum256(msg)
			return ecdsa.VerifyASN1(pub, h[:], der)
		}
	case *rsa.PublicKey:
		if k.Alg == "PS256" {
			verify = func() bool {
				h := sha256.Sum256(msg)
				return rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
			}
		} else {
			verify = func() bool {
				h := sha256.Sum256(msg)
				return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
			}
		}
	case ed25519.PublicKey:
		verify = func() bool { return ed25519.Verify(pub, msg, sig) }
	}
	runtime.LockOSThread()
	// Unlock before returning: a goroutine that exits locked takes its
	// thread with it, and the servers' parent-death signal with that.
	defer runtime.UnlockOSThread()
	c0, w0 := threadCPU(), time.Now()
	n := 0
	for time.Since(w0) < d {
		for range 8 {
			if !verify() {
				panic("bench: " + k.Alg + " signature does not verify")
			}
		}
		n += 8
	}
	return us(threadCPU()-c0) / float64(n)
}

// rawVerifyAll adds one sample per algorithm to samples.
func rawVerifyAll(ks *mint.Keys, samples map[string][]float64) {
	for _, alg := range mint.Algs {
		samples[alg] = append(samples[alg], rawVerify(ks.ByAlg[alg], 150*time.Millisecond))
	}
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
