package bench

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/extauthz/extauthz/bench/mint"
)

type timing struct {
	what string
	d    time.Duration
}

type report struct {
	cfg          Config
	started      time.Time
	total        time.Duration
	loadDuration time.Duration
	timings      []timing
	notes        []string
	peerVersions map[string]string
	tokenCache   int
	loadBefore   string
	loadAfter    string
	// otherCores is how many cores, on average, processes other than the
	// bench's used during the load.
	otherCores float64
	pin        *pinning
	baseline   string // the revision of srvBase, "" without one

	pairs     []*pair
	rawVerify map[string][]float64 // µs per raw verify by algorithm, one sample per round
	gobench   []goBench
}

// summary is the median of a pair's rounds.
type summary struct {
	ok                     bool
	rate, p50, p99         float64 // checks/s, µs
	cpu, loadCPU           float64 // µs per Check
	rateMin, rateMax       float64
	checks, denied, errors int
	deniedHTTP             map[int32]int
	exhausted              bool
}

func (r *report) get(scenario, server string) summary {
	for _, p := range r.pairs {
		if p.scenario == scenario && p.server == server && len(p.runs) > 0 {
			s := summary{ok: true}
			s.rate = medianOf(p.runs, (*Result).Rate)
			s.p50 = medianOf(p.runs, func(x *Result) float64 { return us(x.Percentile(50)) })
			s.p99 = medianOf(p.runs, func(x *Result) float64 { return us(x.Percentile(99)) })
			s.cpu = medianOf(p.runs, func(x *Result) float64 { return us(x.CPUPerCheck()) })
			s.loadCPU = medianOf(p.runs, func(x *Result) float64 { return us(x.LoadCPUPerCheck()) })
			s.rateMin, s.rateMax = p.runs[0].Rate(), p.runs[0].Rate()
			for _, x := range p.runs {
				s.rateMin, s.rateMax = min(s.rateMin, x.Rate()), max(s.rateMax, x.Rate())
				s.checks += x.Checks
				s.denied += x.Denied
				for k, v := range x.DeniedHTTP {
					if s.deniedHTTP == nil {
						s.deniedHTTP = map[int32]int{}
					}
					s.deniedHTTP[k] += v
				}
				s.errors += x.Errors
				s.exhausted = s.exhausted || x.Exhausted
			}
			return s
		}
	}
	return summary{}
}

// target is one line of the targets.
type target struct {
	name     string
	measured string
	limit    string
	met      bool
	known    bool // false when the run lacks what the target needs
	miss     string
	why      string
}

func pct(x float64) string {
	if x < 0.01 {
		return fmt.Sprintf("%.1f%%", x*100)
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

// runs are the measured rounds of a scenario on a server.
func (r *report) runs(scenario, server string) []*Result {
	for _, p := range r.pairs {
		if p.scenario == scenario && p.server == server {
			return p.runs
		}
	}
	return nil
}

// perRound is the median over the rounds of f applied to round i of a and
// of b: a ratio of two runs a few seconds apart is steadier than the ratio
// of two medians when the machine's speed drifts between rounds.
func perRound(a, b []*Result, f func(x, y *Result) float64) (float64, bool) {
	n := min(len(a), len(b))
	if n == 0 {
		return 0, false
	}
	v := make([]float64, n)
	for i := range n {
		v[i] = f(a[i], b[i])
	}
	return median(v), true
}

// bestRuns is, round by round, the faster variant of a peer: OPA-Envoy is
// measured with and without its io_jwt cache on the cached token.
func (r *report) bestRuns(scenario, server string) []*Result {
	rs := r.runs(scenario, server)
	if server != srvOPA {
		return rs
	}
	cs := r.runs(scenario, srvOPACache)
	if len(rs) == 0 {
		return cs
	}
	out := slices.Clone(rs)
	for i := range min(len(rs), len(cs)) {
		if cs[i].Rate() > rs[i].Rate() {
			out[i] = cs[i]
		}
	}
	return out
}

func rate(x *Result) float64 { return x.Rate() }
func cpu(x *Result) float64  { return us(x.CPUPerCheck()) }

func (r *report) targets() []target {
	var ts []target
	floor, floorRuns := r.get(scFloor, srvFloor), r.runs(scFloor, srvFloor)
	cached, cachedRuns := r.get(scCached, srvExt), r.runs(scCached, srvExt)

	// Cached bearer vs the floor, on server CPU per Check (the primary
	// figure: with pinned cores the load generator, not the server, may
	// bound checks/s), checks/s beside it.
	t := target{name: "cached bearer: the floor's server CPU per Check ÷ extauthz's ≥ 0.92", limit: "≥ 0.92"}
	if ratio, ok := perRound(cachedRuns, floorRuns, func(x, y *Result) float64 { return cpu(y) / cpu(x) }); ok {
		rateRatio, _ := perRound(cachedRuns, floorRuns, func(x, y *Result) float64 { return rate(x) / rate(y) })
		t.known, t.met = true, ratio >= 0.92
		t.measured = fmt.Sprintf("%.2f (medians: %.1f vs %.1f µs; checks/s ratio %.2f, %.0f vs %.0f)", ratio, floor.cpu, cached.cpu, rateRatio, cached.rate, floor.rate)
		if !t.met {
			t.miss = fmt.Sprintf("missed by %s", pct(1-ratio/0.92))
			t.why = fmt.Sprintf("A cached-bearer Check costs %.1f µs of server CPU over the floor's %.1f µs: decoding the whole CheckRequest (the floor decodes nothing), selecting the rule, the token cache lookup, the claims checks, the header's CEL expression and building and encoding the response.",
				cached.cpu-floor.cpu, floor.cpu)
			if cb, ok := r.bench("BenchmarkCheck/cached_bearer"); ok {
				t.why += fmt.Sprintf(" In process, the Check itself (without gRPC and decoding) takes %.1f µs and %.0f allocations.", cb.Metrics["ns/op"]/1e3, cb.Metrics["allocs/op"])
			}
			if d, ok := r.bench("BenchmarkDecodeCheckRequest"); ok {
				t.why += fmt.Sprintf(" Decoding the bench's CheckRequest takes %.1f µs (%.0f allocations) in process.", d.Metrics["ns/op"]/1e3, d.Metrics["allocs/op"])
			}
		}
	}
	ts = append(ts, t)

	// New ES256 tokens against what the floor and one raw verify predict,
	// round by round: each round samples the raw verify a few seconds
	// before the floor.
	esRuns := r.runs(scDistinct("ES256"), srvExt)
	raws := r.rawVerify["ES256"]
	t = target{name: "distinct ES256 bearer: (floor + raw ES256 verify) ÷ extauthz's server CPU per Check ≥ 0.90", limit: "≥ 0.90"}
	if n := min(len(esRuns), len(floorRuns), len(raws)); n > 0 {
		ratios, over, rateRatios := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range n {
			pred := cpu(floorRuns[i]) + raws[i]
			ratios[i] = pred / cpu(esRuns[i])
			over[i] = cpu(esRuns[i]) - pred
			rateRatios[i] = rate(esRuns[i]) / (1e6 / pred * float64(r.serverCores()))
		}
		ratio, raw := median(ratios), median(raws[:n])
		es := r.get(scDistinct("ES256"), srvExt)
		t.known, t.met = true, ratio >= 0.90
		t.measured = fmt.Sprintf("%.2f (%.1f µs against %.1f + %.1f µs; checks/s %.0f, %.2f of the rate %d server core(s) would reach at the predicted cost)", ratio, es.cpu, floor.cpu, raw, es.rate, median(rateRatios), r.serverCores())
		if !t.met {
			t.miss = fmt.Sprintf("missed by %s", pct(1-ratio/0.90))
			t.why = fmt.Sprintf("Per round, a new ES256 token costs %.1f µs of server CPU beyond the floor and one raw verify: parsing the token, the token cache miss and insert, the claims, and what every extauthz Check adds to the floor's",
				median(over))
			if cached.ok {
				t.why += fmt.Sprintf(" (the cached bearer costs %.1f µs over the floor)", cached.cpu-floor.cpu)
			}
			t.why += "."
			nb, ok1 := r.bench("BenchmarkCheck/new_bearer_ES256")
			cb, ok2 := r.bench("BenchmarkCheck/cached_bearer")
			pv, ok3 := r.bench("BenchmarkParseVerify/ES256")
			rv, ok4 := r.bench("BenchmarkRawVerify/ES256")
			if ok1 && ok2 && ok3 && ok4 && pv.Metrics["ns/op"] >= rv.Metrics["ns/op"] && nb.Metrics["ns/op"] >= cb.Metrics["ns/op"]+pv.Metrics["ns/op"] {
				t.why += fmt.Sprintf(" In process, a cached-bearer Check takes %.1f µs and a new ES256 one %.1f µs (%.0f allocations); token.Parse + Verify takes %.1f µs against %.1f µs for the raw verify, so parsing adds %.1f µs, and the Check's own work on a new token %.1f µs more.",
					cb.Metrics["ns/op"]/1e3, nb.Metrics["ns/op"]/1e3, nb.Metrics["allocs/op"], pv.Metrics["ns/op"]/1e3, rv.Metrics["ns/op"]/1e3,
					(pv.Metrics["ns/op"]-rv.Metrics["ns/op"])/1e3, (nb.Metrics["ns/op"]-cb.Metrics["ns/op"]-pv.Metrics["ns/op"])/1e3)
			}
		}
	}
	ts = append(ts, t)

	// Against the peers, on server CPU per Check, checks/s beside.
	peer := func(scenario, server string, want float64) target {
		t := target{name: fmt.Sprintf("%s: %s's server CPU per Check ≥ %.1f × extauthz's", scenario, server, want), limit: fmt.Sprintf("≥ %.1f×", want)}
		ourRuns, theirRuns := r.runs(scenario, srvExt), r.bestRuns(scenario, server)
		cpuRatio, ok := perRound(ourRuns, theirRuns, func(x, y *Result) float64 { return cpu(y) / cpu(x) })
		if !ok {
			t.measured = "not measured"
			return t
		}
		rateRatio, _ := perRound(ourRuns, theirRuns, func(x, y *Result) float64 { return rate(x) / rate(y) })
		us, them := r.get(scenario, srvExt), r.best(scenario, server)
		t.known, t.met = true, cpuRatio >= want
		t.measured = fmt.Sprintf("%.2f× (%.1f vs %.1f µs; checks/s %.2f×)", cpuRatio, them.cpu, us.cpu, rateRatio)
		if !t.met {
			t.miss = fmt.Sprintf("missed by %s", pct(1-cpuRatio/want))
			fl := floor.cpu
			if scenario == scCached {
				t.why = fmt.Sprintf("Server CPU per Check is %.1f µs against %s's %.1f µs. extauthz answers the repeated token from its cache; %.1f µs of its %.1f µs is the gRPC round trip every server pays (the floor), so even a Check costing nothing beyond it would reach only %.2f×.",
					us.cpu, server, them.cpu, fl, us.cpu, them.cpu/fl)
			} else {
				t.why = fmt.Sprintf("Server CPU per Check is %.1f µs against %s's %.1f µs. Both pay for the signature check, which bounds the ratio on new tokens", us.cpu, server, them.cpu)
				if alg, ok := strings.CutPrefix(scenario, scDistinct("")); ok && r.rawVerify[alg] != nil {
					raw := median(r.rawVerify[alg])
					ideal := fl + raw
					t.why += fmt.Sprintf(": a server that did nothing but answer (%.1f µs, the floor) and verify (%.1f µs raw %s) would spend %.1f µs, %.2f× less than %s; extauthz spends %.1f µs beyond that", fl, raw, alg, ideal, them.cpu/ideal, server, us.cpu-ideal)
				}
				t.why += "."
			}
		}
		return t
	}
	if r.hasServer(srvOPA) {
		ts = append(ts, peer(scCached, srvOPA, 10))
		for _, alg := range mint.Algs {
			ts = append(ts, peer(scDistinct(alg), srvOPA, map[bool]float64{true: 4, false: 2.5}[alg == "ES256"]))
		}
	}
	if r.hasServer(srvHeimdall) {
		ts = append(ts, peer(scCached, srvHeimdall, 4))
		for _, alg := range mint.Algs {
			ts = append(ts, peer(scDistinct(alg), srvHeimdall, map[bool]float64{true: 1.8, false: 1.5}[alg == "ES256"]))
		}
	}

	// Fixed rate, round by round.
	ff, fe := r.get(scFixed, srvFloor), r.get(scFixed, srvExt)
	t = target{name: fmt.Sprintf("at half the floor's max rate (%.0f/s, the median of the rounds), cached-bearer p99 ≤ 1.5 × the floor's p99", r.rate(scFixed)), limit: "≤ 1.5×"}
	if ratio, ok := perRound(r.runs(scFixed, srvExt), r.runs(scFixed, srvFloor), func(x, y *Result) float64 {
		return float64(x.Percentile(99)) / float64(y.Percentile(99))
	}); ok {
		t.known, t.met = true, ratio <= 1.5
		t.measured = fmt.Sprintf("%.2f× (medians: %.0f vs %.0f µs)", ratio, fe.p99, ff.p99)
		if !t.met {
			t.miss = fmt.Sprintf("missed by %s", pct(ratio/1.5-1))
			t.why = fmt.Sprintf("At this rate a cached Check costs %.1f µs more server CPU than the floor's, yet its p99 is %.0f µs higher: the tail is queueing (%s), behind each server's garbage collector (a cached Check allocates more than the floor's decode: see BenchmarkCheck/cached_bearer) and other processes (%.2f cores busy outside the bench on average).", fe.cpu-ff.cpu, fe.p99-ff.p99, r.pin.mode(), r.otherCores)
		}
	}
	ts = append(ts, t)

	// Memory.
	mem := func(name, bench, unit string, limit float64) target {
		t := target{name: name, limit: fmt.Sprintf("≤ %.0f B", limit)}
		b, ok := r.bench(bench)
		if !ok {
			t.measured = "not measured"
			return t
		}
		v, ok := b.Metrics[unit]
		if !ok {
			t.measured = "not reported"
			return t
		}
		t.known, t.met = true, v <= limit
		t.measured = fmt.Sprintf("%.0f B", v)
		if !t.met {
			t.miss = fmt.Sprintf("missed by %.0f B (%s)", v-limit, pct(v/limit-1))
			if tok, ok := b.Metrics["B/token"]; ok {
				t.why = fmt.Sprintf("%.0f B of an entry is the parsed token (the decoded payload its claim strings point into, the claims map, boxed numbers, the Token struct with its header strings) and %.0f B the LRU's bookkeeping.", tok, v-tok)
			}
		}
		return t
	}
	ts = append(ts, mem("replay store: heap per entry at 1,000,000 entries", "BenchmarkMemoryFootprint", "B/entry", 150))
	ts = append(ts, mem("token cache: heap per entry at 100,000 entries (RFC 9068 access tokens)", "BenchmarkTokenCacheMemory/rfc9068", "B/entry", 1024))
	return ts
}

func isFixed(scenario string) bool { return scenario == scFixed }

// serverCores is how many cores a server process may use.
func (r *report) serverCores() int {
	if r.pin != nil && r.pin.on {
		return len(r.pin.server)
	}
	return runtime.NumCPU()
}

// rate is the median request rate asked of a fixed-rate scenario.
func (r *report) rate(scenario string) float64 {
	for _, p := range r.pairs {
		if p.scenario == scenario {
			return medianOf(p.runs, func(x *Result) float64 { return x.Rate0 })
		}
	}
	return 0
}

// best is the fastest variant of a peer in the scenario: OPA-Envoy is
// measured with and without its io_jwt cache on cached tokens.
func (r *report) best(scenario, server string) summary {
	s := r.get(scenario, server)
	if server == srvOPA {
		if c := r.get(scenario, srvOPACache); c.ok && (!s.ok || c.rate > s.rate) {
			return c
		}
	}
	return s
}

func (r *report) hasServer(server string) bool {
	for _, p := range r.pairs {
		if p.server == server {
			return true
		}
	}
	return false
}

func (r *report) bench(name string) (goBench, bool) {
	for _, b := range r.gobench {
		if b.Name == name {
			return b, true
		}
	}
	return goBench{}, false
}

func svgPath(out string) string {
	return strings.TrimSuffix(out, filepath.Ext(out)) + ".svg"
}

func (r *report) write() error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := r.cfg

	w("# Benchmarks\n\n")
	w("Generated by `make bench` (`%s`) on %s; do not edit by hand. ", cfg.Command, r.started.UTC().Format("2006-01-02 15:04 MST"))
	w("Every number below comes from that one run.\n\n")

	w("## Machine and settings\n\n")
	w("| | |\n| --- | --- |\n")
	w("| CPU | %s, %d cores (`GOMAXPROCS` %d) |\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	w("| Go | %s %s/%s |\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	w("| extauthz | %s |\n", gitDescribe(cfg.Repo))
	for _, name := range []string{srvOPA, "OPA", srvHeimdall} {
		if v, ok := r.peerVersions[name]; ok && (r.hasServer(name) || name == "OPA" && r.hasServer(srvOPA)) {
			w("| %s | %s |\n", name, v)
		}
	}
	w("| cores | %s |\n", r.pin.mode())
	w("| other processes | %.2f cores busy on average during the load, outside the bench's processes; load average (1, 5, 15 min) %s at the start, %s after the load |\n", r.otherCores, r.loadBefore, r.loadAfter)
	w("| load | %d requests in flight over %d HTTP/2 connections per server; %s warm-up per scenario, then %d alternating rounds of %s; medians of the rounds |\n",
		cfg.Concurrency, cfg.Conns, cfg.Warmup, cfg.Rounds, cfg.Duration)
	w("| tokens | %d distinct tokens per algorithm, served in a cycle; extauthz runs with `--token-cache-size %d` so the cycle never hits its LRU cache |\n", cfg.Distinct, r.tokenCache)
	w("| run time | %s in all (%s of load) |\n\n", r.total.Round(time.Second), r.loadDuration.Round(time.Second))

	w("## Targets\n\n")
	w("A ratio between two servers is the median of its per-round values: each round measures the two a few seconds apart, so a change in the machine's speed between rounds falls on both.\n\n")
	w("| target | measured | limit | result |\n| --- | --- | --- | --- |\n")
	var whys []string
	for _, t := range r.targets() {
		res := "met"
		switch {
		case !t.known:
			res = "not measured in this run"
		case !t.met:
			res = "**" + t.miss + "**"
			if t.why != "" {
				whys = append(whys, fmt.Sprintf("- *%s*: %s", t.name, t.why))
			}
		}
		w("| %s | %s | %s | %s |\n", t.name, t.measured, t.limit, res)
	}
	w("\n")
	if len(whys) > 0 {
		w("Why each miss happens, from this run's numbers:\n\n%s\n\n", strings.Join(whys, "\n"))
		if r.otherCores >= 0.1 {
			w("Other processes kept %.2f of the %d cores busy on average during the load, so every number here carries their noise.\n\n", r.otherCores, runtime.NumCPU())
		}
	}

	w("## End to end: real gRPC to each server process\n\n")
	w("![checks/s and server CPU per Check, every scenario and server](%s)\n\n", filepath.Base(svgPath(cfg.Out)))
	w("Server CPU is the server process's user + system time from `/proc/<pid>/stat` over the round, divided by the Checks answered; ")
	w("load-gen CPU is the same for the load generator. Server CPU per Check is the primary figure: ")
	if r.pin != nil && r.pin.on {
		w("the servers run on core(s) %s and the load generator on %s, so checks/s is bounded by whichever side saturates its cores first (for the cheapest servers, often the load generator). ", r.pin.serverSet, r.pin.loadSet)
	} else {
		w("the servers and the load generator share the cores, so checks/s depends on both. ")
	}
	w("Latency is per request, from send to answer.\n\n")
	w("| scenario | server | checks/s | range of rounds | p50 µs | p99 µs | server CPU µs/Check | load-gen CPU µs/Check | ratio to the floor (checks/s) |\n")
	w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	floor := r.get(scFloor, srvFloor)
	for _, sc := range r.scenarios() {
		if isFixed(sc) {
			continue
		}
		for _, srv := range servers {
			s := r.get(sc, srv)
			if !s.ok {
				continue
			}
			flags := ""
			if s.denied > 0 || s.errors > 0 {
				var by []string
				for _, code := range slices.Sorted(maps.Keys(s.deniedHTTP)) {
					by = append(by, fmt.Sprintf("%d × HTTP %d", s.deniedHTTP[code], code))
				}
				flags = fmt.Sprintf(" (%d denied: %s; %d gRPC errors)", s.denied, strings.Join(by, ", "), s.errors)
			}
			if s.exhausted {
				what := "assertions"
				if sc == scDPoP {
					what = "proofs"
				}
				flags += " (ran out of pre-signed " + what + ")"
			}
			w("| %s | %s%s | %.0f | %.0f–%.0f | %.0f | %.0f | %.1f | %.1f | %.2f |\n",
				sc, srv, flags, s.rate, s.rateMin, s.rateMax, s.p50, s.p99, s.cpu, s.loadCPU, s.rate/floor.rate)
		}
	}
	w("\n")

	if r.hasServer(srvOPA) || r.hasServer(srvHeimdall) {
		w("### extauthz against the peers\n\n")
		w("extauthz's checks/s over the peer's, and the peer's server CPU per Check over extauthz's (higher is better for extauthz in both), from the medians above; the targets use per-round ratios, so they differ a little. Where OPA-Envoy ran with and without its io_jwt cache, the faster of the two counts.\n\n")
		w("| scenario | vs OPA-Envoy: checks/s | vs OPA-Envoy: CPU/Check | vs Heimdall: checks/s | vs Heimdall: CPU/Check |\n| --- | ---: | ---: | ---: | ---: |\n")
		for _, sc := range r.scenarios() {
			us := r.get(sc, srvExt)
			if !us.ok || isFixed(sc) {
				continue
			}
			cells := []string{}
			for _, srv := range []string{srvOPA, srvHeimdall} {
				them := r.best(sc, srv)
				if !them.ok {
					cells = append(cells, "–", "–")
					continue
				}
				cells = append(cells, fmt.Sprintf("%.2f×", us.rate/them.rate), fmt.Sprintf("%.2f×", them.cpu/us.cpu))
			}
			if cells[0] == "–" && cells[2] == "–" {
				continue
			}
			w("| %s | %s |\n", sc, strings.Join(cells, " | "))
		}
		w("\n")
	}

	r.writeFloor(w)
	r.writeBaseline(w)
	w("### extauthz against the floor\n\n")
	w("The floor is a no-op ext_authz server (this bench program's `noop` mode) answering the same requests in the same run. ")
	w("Raw verify is the hash of the signing input plus the standard library's verify (ECDSA with the signature already DER), on one thread, timed by that thread's CPU clock, measured in this run at the start of each round (median of %d samples); client assertions are ES256.\n\n", len(r.rawVerify["ES256"]))
	w("| scenario | checks/s ÷ floor | server CPU µs/Check | over the floor | raw verify µs | over floor + raw verify |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range r.scenarios() {
		s := r.get(sc, srvExt)
		if !s.ok || isFixed(sc) {
			continue
		}
		alg, distinct := strings.CutPrefix(sc, scDistinct(""))
		verifies := 1.0
		switch sc {
		case scAssertMem, scAssertRedis:
			alg, distinct = "ES256", true
		case scDPoP:
			// The access token's signature and the proof's.
			alg, distinct, verifies = "ES256", true, 2
		}
		if raw := median(r.rawVerify[alg]); distinct && raw > 0 {
			rawCell := fmt.Sprintf("%.1f", raw)
			if verifies != 1 {
				rawCell = fmt.Sprintf("%.0f × %.1f = %.1f", verifies, raw, verifies*raw)
			}
			w("| %s | %.2f | %.1f | +%.1f µs | %s | +%.1f µs |\n", sc, s.rate/floor.rate, s.cpu, s.cpu-floor.cpu, rawCell, s.cpu-floor.cpu-verifies*raw)
		} else {
			w("| %s | %.2f | %.1f | +%.1f µs | – | – |\n", sc, s.rate/floor.rate, s.cpu, s.cpu-floor.cpu)
		}
	}
	w("\n")
	r.writeDPoP(w)

	if r.get(scFixed, srvFloor).ok {
		w("### Fixed rate: half the floor's maximum\n\n")
		w("Open loop at half the rate the floor reached in the same round (%.0f requests/s, the median of the rounds), at the end of each round: each request has a scheduled send time and its latency counts from then, so queueing is charged to the server.\n\n", r.rate(scFixed))
		w("| server | achieved checks/s | p50 µs | p99 µs | server CPU µs/Check | load-gen CPU µs/Check |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, srv := range []string{srvFloor, srvExt} {
			s := r.get(scFixed, srv)
			if s.ok {
				w("| %s | %.0f | %.0f | %.0f | %.1f | %.1f |\n", srv, s.rate, s.p50, s.p99, s.cpu, s.loadCPU)
			}
		}
		w("\nA Check costs more CPU at this rate than in the closed loop above, on both sides: with fewer requests in flight, fewer of them share each write, read and wake-up (and Go's scheduler spins more between them).\n\n")
	}

	r.writeGoBench(w)

	w("## How it is measured\n\n")
	w("- `make bench` runs `%s`: it builds `./cmd/extauthz`, builds the peers with `bench/build-peers.sh` (from the Go module proxy at the versions in `bench/peers/go.mod`, cached in `${EXTAUTHZ_TOOLS:-$HOME/.cache/extauthz-tools}/peers-<version>/`), generates one key per algorithm, signs every token before any load, and serves the JWKS on a loopback HTTP server.\n", cfg.Command)
	w("- Every server is its own process on 127.0.0.1: the no-op floor (`extauthz-bench noop`), extauthz with the memory replay store and a second one with Redis (`redis-server` on a free port), OPA-Envoy with `bench/opa/policy.rego` (`io.jwt.decode_verify` with the same JWKS, iss, aud and the scope check; the JWKS given as data, as `cert`; on the cached token it runs twice, with its `io_jwt` verification cache off and on, and on distinct tokens with it off, where it could not help), and Heimdall (`serve decision --envoy-grpc`, `bench/heimdall/`, keys from the loopback JWKS endpoint, access log, metrics and tracing off).\n")
	w("- Before any load, every server must allow each kind of request and deny a token with a forged signature (and extauthz a replayed assertion), or the run stops.\n")
	w("- Requests are Envoy-shaped CheckRequests (peer addresses, request time, a dozen headers, the `Authorization` header; a form body for client assertions), marshalled in advance so the load generator spends its CPU on gRPC only.\n")
	w("- Closed loop: %d workers keep one request each in flight for a fixed time. Each scenario gets %s of warm-up before its first round; the rounds then visit every scenario and server in turn, %d times, and the tables show medians.\n", cfg.Concurrency, cfg.Warmup, cfg.Rounds)
	w("- Client assertions are single use (replay protection is on): %d are signed for each replay store, ES256, each with its own `jti`.\n", cfg.Assertions)
	if cfg.wants(keyDPoP) {
		w("- DPoP: %d ES256 access tokens bound by `cnf.jkt` to one of %d ES256 client keys, each with its own ES256 proof (own `jti`, `htm` and `htu` of the request, `iat` at signing, `ath` of its token), all signed before the servers start and each sent once, to a rule with `dpop: {mode: required, max_age: 1h}` loaded from `bench/dpop-policy.yaml` beside `bench/extauthz/policy.yaml`.\n", cfg.DPoPProofs, DPoPClients)
	}
	if cfg.wants(keyIntrospect) {
		w("- Cached introspection: %d opaque tokens of an RFC 7662 introspection issuer, cycled, to a rule with the API rule's checks on its own host (`bench/introspect.go`); a loopback endpoint answers each once (client_secret_basic) before the rounds, and extauthz's introspection cache (`cache_ttl: 1h`) answers every Check after.\n", introspectTokens)
	}
	w("- The in-process benchmarks are `go test -bench` on the packages, run after the servers have stopped: speed ones 3 times for %s each (the tables show medians), memory ones once.\n\n", cfg.GoBenchDur)

	w("## Run time\n\n| phase | time |\n| --- | ---: |\n")
	for _, t := range r.timings {
		w("| %s | %s |\n", t.what, t.d.Round(100*time.Millisecond))
	}
	w("| load (every scenario, %d rounds, and the fixed-rate runs) | %s |\n", cfg.Rounds, r.loadDuration.Round(time.Second))
	w("| total | %s |\n\n", r.total.Round(time.Second))

	if len(r.notes) > 0 {
		w("## Notes from this run\n\n")
		for _, n := range r.notes {
			first, rest, multi := strings.Cut(n, "\n")
			w("- %s\n", first)
			if multi {
				w("\n  ```\n")
				for _, line := range strings.Split(strings.TrimRight(rest, "\n"), "\n") {
					w("  %s\n", line)
				}
				w("  ```\n")
			}
		}
		w("\n")
	}

	if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath(cfg.Out), []byte(r.chart()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(cfg.Out, []byte(b.String()), 0o644)
}

// scenarios lists the scenarios measured, in order.
func (r *report) scenarios() []string {
	out := []string{scFloor}
	for _, p := range r.pairs {
		if !contains(out, p.scenario) {
			out = append(out, p.scenario)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *report) writeGoBench(w func(string, ...any)) {
	if len(r.gobench) == 0 {
		return
	}
	w("## In process: `go test -bench`\n\n")
	w("No gRPC: the functions are called directly. µs/op is wall time per operation on one goroutine (or `RunParallel` on every core where the benchmark says so).\n\n")
	groups := []struct {
		title, prefix string
	}{
		{"Token parse + verify per algorithm (`internal/token`), and the raw crypto under it", "internal/token"},
		{"Policy: rule selection and CEL evaluation (`internal/policy`)", "internal/policy"},
		{"A whole Check per path, through `(*check.Server).Check` (`internal/check`)", "internal/check"},
		{"Replay store and key plane", "internal/replay|internal/keys"},
	}
	for _, g := range groups {
		var rows []goBench
		for _, b := range r.gobench {
			if _, isMem := b.Metrics["B/entry"]; isMem {
				continue
			}
			if _, isMem := b.Metrics["B/issuer"]; isMem {
				continue
			}
			for _, p := range strings.Split(g.prefix, "|") {
				if b.Pkg == p {
					rows = append(rows, b)
				}
			}
		}
		if len(rows) == 0 {
			continue
		}
		w("### %s\n\n| benchmark | µs/op | B/op | allocs/op |\n| --- | ---: | ---: | ---: |\n", g.title)
		for _, b := range rows {
			w("| %s | %.2f | %.0f | %.0f |\n", strings.TrimPrefix(b.Name, "Benchmark"), b.Metrics["ns/op"]/1000, b.Metrics["B/op"], b.Metrics["allocs/op"])
		}
		w("\n")
	}
	w("### Memory\n\n| benchmark | what | heap |\n| --- | --- | ---: |\n")
	for _, m := range []struct{ name, what, unit string }{
		{"BenchmarkMemoryFootprint", "replay store (memory), 1,000,000 entries", "B/entry"},
		{"BenchmarkTokenCacheMemory/rfc9068", "verified-token cache, 100,000 entries: RFC 9068 access tokens (8 claims, as the bench sends)", "B/entry"},
		{"BenchmarkTokenCacheMemory/rich", "verified-token cache, 100,000 entries: richer tokens (17 claims: OIDC profile, amr, groups)", "B/entry"},
		{"BenchmarkIssuersMemory", "10,000 issuers with 2 keys each (static `jwks`), compiled policy and key plane", "B/issuer"},
	} {
		b, ok := r.bench(m.name)
		if !ok {
			w("| %s | %s | not measured |\n", strings.TrimPrefix(m.name, "Benchmark"), m.what)
			continue
		}
		w("| %s | %s | %.0f %s |\n", strings.TrimPrefix(m.name, "Benchmark"), m.what, b.Metrics[m.unit], m.unit)
	}
	w("\n")
	if b, ok := r.bench("BenchmarkTokenCacheMemory/rfc9068"); ok {
		if tok, ok := b.Metrics["B/token"]; ok {
			w("Of an RFC 9068 token's cache entry, %.0f B is the parsed token itself (the decoded payload its claim strings point into, the claims map, boxed numbers, the Token struct) and %.0f B the cache's own bookkeeping (LRU list node, map slot, entry).\n\n", tok, b.Metrics["B/entry"]-tok)
		}
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func gitDescribe(repo string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "unknown commit"
	}
	s := strings.TrimSpace(string(out))
	cmd = exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	cmd.Dir = repo
	if st, err := cmd.Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		s += " with uncommitted changes"
	}
	return "commit " + s
}

// writeFloor reports the floor against the bare cost of a gRPC unary call.
func (r *report) writeFloor(w func(string, ...any)) {
	floor, bare := r.get(scFloor, srvFloor), r.get(scBare, srvFloor)
	if !floor.ok || !bare.ok {
		return
	}
	w("### The floor and a bare gRPC call\n\n")
	w("The floor is the cheapest ext_authz server there can be: a Go gRPC server whose codec does not unmarshal the CheckRequest at all and answers every Check OK with an empty OkHttpResponse marshalled once, at start. ")
	w("The same process serves an empty unary method taking and returning an empty message, measured in the same rounds: the cost of a gRPC unary call on this machine.\n\n")
	w("| | server CPU µs/Check | checks/s | load-gen CPU µs/Check |\n| --- | ---: | ---: | ---: |\n")
	w("| bare gRPC unary, empty message | %.1f | %.0f | %.1f |\n", bare.cpu, bare.rate, bare.loadCPU)
	w("| floor: Check, not decoded, empty OK | %.1f | %.0f | %.1f |\n", floor.cpu, floor.rate, floor.loadCPU)
	w("| floor over the bare call | %+.1f | | |\n\n", floor.cpu-bare.cpu)
}

// writeBaseline compares extauthz with the baseline revision's, round by
// round, on what the targets measure.
func (r *report) writeBaseline(w func(string, ...any)) {
	if r.baseline == "" || !r.hasServer(srvBase) {
		return
	}
	floorRuns, raws := r.runs(scFloor, srvFloor), r.rawVerify["ES256"]
	w("### Before and after: extauthz at %s against this build\n\n", r.baseline)
	w("Both builds run side by side in every round, on the same policy and requests; each figure is the median over the rounds of its per-round value.\n\n")
	w("| scenario | server CPU µs/Check before | after | after ÷ before | target figure before | after |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range []string{scCached, scDistinct("ES256")} {
		before, after := r.runs(sc, srvBase), r.runs(sc, srvExt)
		n := min(len(before), len(after), len(floorRuns))
		if n == 0 {
			continue
		}
		var cb, ca, rat, tb, ta []float64
		for i := range n {
			cb, ca = append(cb, cpu(before[i])), append(ca, cpu(after[i]))
			rat = append(rat, cpu(after[i])/cpu(before[i]))
			pred := cpu(floorRuns[i])
			if sc != scCached && i < len(raws) {
				pred += raws[i]
			}
			tb, ta = append(tb, pred/cpu(before[i])), append(ta, pred/cpu(after[i]))
		}
		what := "floor ÷ CPU"
		if sc != scCached {
			what = "(floor + raw verify) ÷ CPU"
		}
		w("| %s | %.1f | %.1f | %.2f | %.2f (%s) | %.2f |\n", sc, median(cb), median(ca), median(rat), median(tb), what, median(ta))
	}
	w("\n")
}
