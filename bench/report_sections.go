package bench

import (
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/extauthz/extauthz/internal/tuning"
)

// writeTargets is the targets table and why each miss happens.
func (r *report) writeTargets(w func(string, ...any)) {
	w("## Targets\n\n")
	w("A ratio between two servers is the median of its per-round values: each round measures the two a few seconds apart, so a change in the machine's speed between rounds falls on both.\n\n")
	w("| target | measured | limit | result |\n| --- | --- | --- | --- |\n")
	// A run the rest of the machine disturbed cannot show a target met
	// under load: the servers it compares were slowed unequally.
	disturbed := r.otherCores >= 0.1
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
		case disturbed && !t.inProcess:
			res = "met in a disturbed run: not established"
		}
		w("| %s | %s | %s | %s |\n", t.name, t.measured, t.limit, res)
	}
	w("\n")
	if disturbed {
		w("Other processes kept %.2f of the %d cores busy on average during the load, so every number here carries their noise, and no target measured under load counts as met from this run.\n\n", r.otherCores, runtime.NumCPU())
	}
	if len(whys) > 0 {
		w("Why each miss happens, from this run's numbers:\n\n%s\n\n", strings.Join(whys, "\n"))
	}
}

// writeEndToEnd is every scenario on every server over real gRPC.
func (r *report) writeEndToEnd(w func(string, ...any)) {
	cfg := r.cfg
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
}

// writePeers compares extauthz with the peers, from the medians.
func (r *report) writePeers(w func(string, ...any)) {
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
}

// writeFloor reports the floor against the bare cost of a gRPC unary call.
func (r *report) writeFloor(w func(string, ...any)) {
	floor, bare := r.get(scFloor, srvFloor), r.get(scBare, srvFloor)
	if !floor.ok || !bare.ok {
		return
	}
	w("### The floor and a bare gRPC call\n\n")
	w("The floor is the cheapest ext_authz server there can be: a Go gRPC server whose codec does not unmarshal the CheckRequest at all and answers every Check OK with an empty OkHttpResponse marshalled once, at start. ")
	w("The same process serves an empty unary method taking and returning an empty message, measured in the same rounds: the cost of a gRPC unary call on this machine. ")
	w("It is built as extauthz's server is where that makes a Check cheaper: its garbage collector is paced the same (a %d MiB headroom between collections, `internal/tuning`) and it runs Checks on as many stream workers (%d), so what those save is saved in the floor too, not credited to extauthz.\n\n", tuning.DefaultGCHeadroom>>20, tuning.StreamWorkers)
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

// sameTimeRatio is the floor's server CPU per Check ÷ extauthz's on the
// cached token as runSameTime measured it: the median of the rounds and
// their range.
func (r *report) sameTimeRatio() (med, lo, hi float64, ok bool) {
	if len(r.sameTime) == 0 {
		return 0, 0, 0, false
	}
	v := make([]float64, len(r.sameTime))
	for i, p := range r.sameTime {
		v[i] = cpu(p[0]) / cpu(p[1])
	}
	return median(v), slices.Min(v), slices.Max(v), true
}

// writeVsFloor is extauthz over the floor and the raw verify, per scenario.
func (r *report) writeVsFloor(w func(string, ...any)) {
	floor := r.get(scFloor, srvFloor)
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
			w("| %s | %.2f | %.1f | %+.1f µs | %s | %+.1f µs |\n", sc, s.rate/floor.rate, s.cpu, s.cpu-floor.cpu, rawCell, s.cpu-floor.cpu-verifies*raw)
		} else {
			w("| %s | %.2f | %.1f | %+.1f µs | – | – |\n", sc, s.rate/floor.rate, s.cpu, s.cpu-floor.cpu)
		}
	}
	w("\n")
	if m, lo, hi, ok := r.sameTimeRatio(); ok {
		solo, _ := r.cachedVsFloor(floorCPURatio)
		w("Each round also loads the floor and extauthz on the cached token at the same time, on the same server cores, each with half the requests in flight (%d), so that whatever else the machine does in those seconds falls on both; the solo runs above are seconds apart. Measured so, the floor's server CPU per Check ÷ extauthz's is %.2f (median of %d rounds, %.2f to %.2f), against %.2f solo: the steadiest figure from run to run, for comparing runs and builds, but not the target's condition. Sharing the cores and caches raises both servers' cost, extauthz's (the larger working set) more, so it tends to run below the solo ratio, and only the ratio is given.\n\n",
			max(1, r.cfg.Concurrency/2), m, len(r.sameTime), lo, hi, solo)
	}
}

// writeFixed is the open-loop runs at half the floor's maximum.
func (r *report) writeFixed(w func(string, ...any)) {
	if r.get(scFixed, srvFloor).ok {
		w("### Fixed rate: half the floor's maximum\n\n")
		w("Open loop at half the rate the floor reached in the same round (%.0f requests/s, the median of the rounds), at the end of each round: each request has a scheduled send time and its latency counts from then, so queueing is charged to the server. The load generator (`extauthz-bench load -rate`) is a process of its own, as in every run: the bench's process holds every request of every scenario, hundreds of megabytes, and when it sent them itself its collector's pauses were the tail of every server's run, the floor's too. Each run is led by one a sixth as long at the same rate, not recorded, and the two servers take turns going first, so work the closed loop's heavier servers leave on the servers' core falls on neither more than the other.\n\n", r.rate(scFixed))
		w("| server | achieved checks/s | p50 µs | p99 µs | server CPU µs/Check | load-gen CPU µs/Check |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, srv := range []string{srvFloor, srvExt} {
			s := r.get(scFixed, srv)
			if s.ok {
				w("| %s | %.0f | %.0f | %.0f | %.1f | %.1f |\n", srv, s.rate, s.p50, s.p99, s.cpu, s.loadCPU)
			}
		}
		w("\nA Check costs more CPU at this rate than in the closed loop above, on both sides: with fewer requests in flight, fewer of them share each write, read and wake-up (and Go's scheduler spins more between them).\n\n")
	}
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
			w("Of an RFC 9068 token's cache entry, %.0f B is the compact token (the decoded payload, its header members, and the registered claims lifted out of it as offsets and numbers; the claims map is not kept, a cache hit builds it only when CEL reads `claims`) and %.0f B the cache's own bookkeeping (map slot, LRU links, issuer, key).\n\n", tok, b.Metrics["B/entry"]-tok)
		}
	}
}
