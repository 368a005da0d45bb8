package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/extauthz/extauthz/bench/mint"
)

// buildPairs lists every scenario on every server that runs it, in the
// order each round visits them.
func (s *session) buildPairs(context.Context) error {
	add := func(scenario, server string, tg *Target, src Source) {
		if tg != nil && s.cfg.wants(scenarioKey(scenario)) {
			s.pairs = append(s.pairs, &pair{scenario: scenario, server: server, target: tg, src: src})
		}
	}
	s.cached = NewCycle(s.cachedReqs)
	// The order puts what the targets compare side by side in time, so a
	// slowdown of the machine between rounds falls on both: the floor
	// between the cached bearer and new ES256 tokens, each peer right after
	// extauthz on the same tokens. Each server gets its own cursor over the
	// distinct tokens, so each sees every token in the same order.
	distinctSrc := func(alg string) Source { return NewCycle(s.distinct[alg]) }
	add(scCached, srvExt, s.ext, s.cached)
	add(scCached, srvBase, s.base, s.cached)
	add(scFloor, srvFloor, s.floor, s.cached)
	add(scBare, srvFloor, s.bare, NewCycle([][]byte{nil}))
	add(scDistinct("ES256"), srvExt, s.ext, distinctSrc("ES256"))
	add(scDistinct("ES256"), srvBase, s.base, distinctSrc("ES256"))
	add(scDistinct("ES256"), srvOPA, s.opaDistinct, distinctSrc("ES256"))
	add(scDistinct("ES256"), srvHeimdall, s.heim, distinctSrc("ES256"))
	add(scDPoP, srvExt, s.ext, s.dpopSrc)
	add(scIntrospect, srvExt, s.ext, NewCycle(s.introspectReqs))
	// OPA-Envoy twice on the cached token: its io_jwt cache may or may not
	// pay off.
	add(scCached, srvOPA, s.opaDistinct, s.cached)
	add(scCached, srvOPACache, s.opaCached, s.cached)
	add(scCached, srvHeimdall, s.heim, s.cached)
	for _, alg := range mint.Algs[1:] {
		sc := scDistinct(alg)
		add(sc, srvExt, s.ext, distinctSrc(alg))
		add(sc, srvOPA, s.opaDistinct, distinctSrc(alg))
		add(sc, srvHeimdall, s.heim, distinctSrc(alg))
	}
	if len(s.txReqs) > 0 {
		add(scTxToken, srvExt, s.ext, NewCycle(s.txReqs))
	}
	add(scAssertMem, srvExt, s.ext, s.memSrc)
	add(scAssertRedis, srvExt, s.extRedis, s.redisSrc)
	return nil
}

// runRounds runs the interleaved rounds: each visits every pair in turn,
// then the open-loop runs. It records the rounds in the report, and how
// busy the rest of the machine was meanwhile.
func (s *session) runRounds(ctx context.Context) error {
	cfg, rep := s.cfg, s.rep
	// What the rest of the machine does meanwhile is noise in every number:
	// the report says how much of it there was.
	// The load generator processes count as ours once they have ended.
	ours := func() time.Duration {
		d := selfCPU() + childrenCPU()
		for _, p := range s.procs {
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
	s.fixed = []*pair{
		{scenario: scFixed, server: srvFloor, target: s.floor, src: s.cached},
		{scenario: scFixed, server: srvExt, target: s.ext, src: s.cached},
	}
	if !cfg.wants(keyFixed) {
		s.fixed = nil
	}
	if err := s.loadFiles(); err != nil {
		return err
	}
	if err := s.pin.pinSelf(); err != nil {
		return err
	}
	s.onClose(s.pin.unpinSelf)
	for round := 1; round <= cfg.Rounds; round++ {
		if err := s.runRound(ctx, round); err != nil {
			return err
		}
	}
	s.pin.unpinSelf()
	s.pairs = append(s.pairs, s.fixed...)
	if busy0 > 0 {
		other := (machineBusy() - busy0) - (ours() - ours0)
		rep.otherCores = max(0, other.Seconds()/time.Since(wall0).Seconds())
	}
	rep.pairs = s.pairs
	rep.loadAfter = loadAvg()
	rep.loadDuration = time.Since(s.serversStart)
	return nil
}

// runRound is one round: every pair in the closed loop (each warmed up
// before its first round), then the fixed-rate runs at half the rate the
// floor reached in this round.
func (s *session) runRound(ctx context.Context, round int) error {
	cfg := s.cfg
	const maxInFlight = 64
	rawVerifyAll(s.idp, s.rep.rawVerify)
	var floorRate float64
	for _, p := range s.pairs {
		if !p.warm {
			if _, err := s.closedLoop(ctx, p, cfg.Warmup); err != nil {
				return err
			}
			p.warm = true
		}
		r, err := s.closedLoop(ctx, p, cfg.Duration)
		if err != nil {
			return err
		}
		p.runs = append(p.runs, r)
		if p.scenario == scFloor {
			floorRate = r.Rate()
		}
		s.logf("round %d  %-24s %-10s %8.0f checks/s  p50 %6.0fµs  p99 %6.0fµs  server %5.1fµs/check  denied %d errors %d%s",
			round, p.scenario, p.server, r.Rate(), us(r.Percentile(50)), us(r.Percentile(99)), us(r.CPUPerCheck()), r.Denied, r.Errors,
			map[bool]string{true: "  (pool exhausted)", false: ""}[r.Exhausted])
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := s.runSameTime(ctx, round); err != nil {
		return err
	}
	// The fixed-rate runs follow the closed loop's heaviest servers, whose
	// collectors and sockets may still be busy on the servers' cores: each
	// run is led by a settling run at the same rate, not recorded, and the
	// order alternates by round, so what is left over falls on neither
	// side more than the other.
	fixed := slices.Clone(s.fixed)
	if round%2 == 0 {
		slices.Reverse(fixed)
	}
	for _, p := range fixed {
		rate := floorRate / 2
		settle := cfg.Duration / 6
		if !p.warm {
			settle, p.warm = cfg.Warmup/2, true
		}
		r, err := s.fixedRate(ctx, p, rate, maxInFlight, settle)
		if err != nil {
			return err
		}
		r.Rate0 = rate
		p.runs = append(p.runs, r)
		s.logf("round %d  %-24s %-10s %8.0f checks/s  p50 %6.0fµs  p99 %6.0fµs  server %5.1fµs/check  denied %d errors %d",
			round, fmt.Sprintf("fixed %.0f/s", rate), p.server, r.Rate(), us(r.Percentile(50)), us(r.Percentile(99)), us(r.CPUPerCheck()), r.Denied, r.Errors)
	}
	return nil
}

// loadFiles writes each pair's requests to a file, once per set of
// requests, for the load generator processes, and starts each pair where
// its source stands (the sanity checks took the first single-use ones).
// The load comes from processes of their own, as in `outside`: this
// process holds every request of the bench, hundreds of megabytes, and
// its collector's pauses on the load generator's core stalled the load,
// which changed what every server's Check cost.
func (s *session) loadFiles() error {
	files := map[*[]byte]string{}
	for _, p := range append(slices.Clone(s.pairs), s.fixed...) {
		var reqs [][]byte
		switch src := p.src.(type) {
		case *Cycle:
			reqs, p.pos = src.reqs, src.taken()
		case *OneShot:
			reqs, p.pos, p.once = src.reqs, src.taken(), true
		default:
			return fmt.Errorf("bench: %s on %s: a %T cannot be written for a load generator", p.scenario, p.server, p.src)
		}
		if len(reqs) == 0 {
			return fmt.Errorf("bench: %s on %s: no requests", p.scenario, p.server)
		}
		f, ok := files[&reqs[0]]
		if !ok {
			f = filepath.Join(s.dir, fmt.Sprintf("requests-%d.req", len(files)))
			if err := writeRequests(f, reqs); err != nil {
				return err
			}
			files[&reqs[0]] = f
		}
		p.reqs = f
	}
	return nil
}

// load is a load generator run of reqs against t with the bench's load
// settings. The process inherits this process's cores (the load
// generator's when the run pins), so it is not asked to pin itself.
func (s *session) load(t *Target, reqs string, d time.Duration) LoadConfig {
	return LoadConfig{
		Addr: t.Addr, Pid: t.Proc.Pid(), Requests: reqs, Method: t.Method,
		Concurrency: s.cfg.Concurrency, Conns: s.cfg.Conns, Duration: d,
	}
}

// closedLoop is one closed-loop run of p from a load generator process of
// its own, going on in p's requests where the last run stopped.
func (s *session) closedLoop(ctx context.Context, p *pair, d time.Duration) (*Result, error) {
	c := s.load(p.target, p.reqs, d)
	c.Start, c.Once = p.pos, p.once
	lr, err := loadProcess(ctx, s.cfg.Self, c)
	if err != nil {
		return nil, fmt.Errorf("bench: %s on %s: load generator: %w", p.scenario, p.server, err)
	}
	p.pos += uint64(lr.Sent)
	return lr.result(), nil
}

// fixedRate is one open-loop run of p's requests, after a settling run
// at the same rate, from a load generator process of its own (see
// loadFiles: the collector's pauses of this process were the tail of
// every server's fixed-rate run, the floor's too).
func (s *session) fixedRate(ctx context.Context, p *pair, rate float64, maxInFlight int, settle time.Duration) (*Result, error) {
	c := s.load(p.target, p.reqs, s.cfg.Duration)
	c.Rate, c.Concurrency, c.Warmup = rate, maxInFlight, settle
	lr, err := loadProcess(ctx, s.cfg.Self, c)
	if err != nil {
		return nil, fmt.Errorf("bench: fixed rate on %s: %w", p.server, err)
	}
	return lr.result(), nil
}

// runSameTime loads the floor and extauthz with the cached token at the
// same time, each with half the requests in flight, on the same server
// cores: whatever else the machine does in those seconds falls on both,
// which the solo runs, seconds apart, cannot promise. Sharing the cores
// and caches raises both servers' cost, so the report gives only their
// ratio, beside the solo figures.
func (s *session) runSameTime(ctx context.Context, round int) error {
	if s.floor == nil || s.ext == nil || !s.cfg.wants(scenarioKey(scCached)) {
		return nil
	}
	cfg := s.cfg
	var reqs string
	for _, p := range s.pairs {
		if p.src == s.cached {
			reqs = p.reqs
		}
	}
	// Each from a load generator process of its own (see loadFiles).
	both := func(d time.Duration) ([2]*Result, error) {
		f, e := s.load(s.floor, reqs, d), s.load(s.ext, reqs, d)
		f.Concurrency, e.Concurrency = max(1, cfg.Concurrency/2), max(1, cfg.Concurrency/2)
		lf, le, err := loadsAtOnce(ctx, cfg.Self, f, e, false)
		if err != nil {
			return [2]*Result{}, fmt.Errorf("bench: same time: %w", err)
		}
		return [2]*Result{lf.result(), le.result()}, nil
	}
	if round == 1 {
		if _, err := both(cfg.Warmup); err != nil {
			return err
		}
	}
	out, err := both(cfg.Duration)
	if err != nil {
		return err
	}
	f, e := out[0], out[1]
	if e.Denied > 0 || e.Errors > 0 || f.Errors > 0 || f.Checks == 0 || e.Checks == 0 {
		return fmt.Errorf("bench: same-time round %d: the floor %d checks, %d errors; extauthz %d checks, %d denied, %d errors",
			round, f.Checks, f.Errors, e.Checks, e.Denied, e.Errors)
	}
	s.rep.sameTime = append(s.rep.sameTime, out)
	s.logf("round %d  same time: floor %8.0f checks/s %5.1fµs/check, extauthz cached %8.0f checks/s %5.1fµs/check, floor ÷ extauthz %.3f",
		round, f.Rate(), us(f.CPUPerCheck()), e.Rate(), us(e.CPUPerCheck()), cpu(f)/cpu(e))
	return nil
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
