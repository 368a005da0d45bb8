package bench

import (
	"fmt"
	"math"
	"strings"

	"github.com/extauthz/extauthz/bench/mint"
)

// target is one line of the targets.
type target struct {
	name     string
	measured string
	limit    string
	met      bool
	known    bool // false when the run lacks what the target needs
	miss     string
	why      string
	// inProcess marks a target measured in process (memory), which other
	// processes on the machine cannot disturb.
	inProcess bool
}

func pct(x float64) string {
	if x < 0.01 {
		return fmt.Sprintf("%.1f%%", x*100)
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

// targets are the targets, in the order the report lists them.
func (r *report) targets() []target {
	var ts []target
	ts = append(ts, r.targetCached(), r.targetDistinctES256())
	if r.hasServer(srvOPA) {
		ts = append(ts, r.targetPeer(scCached, srvOPA, 10))
		for _, alg := range mint.Algs {
			ts = append(ts, r.targetPeer(scDistinct(alg), srvOPA, map[bool]float64{true: 4, false: 2.5}[alg == "ES256"]))
		}
	}
	if r.hasServer(srvHeimdall) {
		ts = append(ts, r.targetPeer(scCached, srvHeimdall, 4))
		for _, alg := range mint.Algs {
			ts = append(ts, r.targetPeer(scDistinct(alg), srvHeimdall, map[bool]float64{true: 1.8, false: 1.5}[alg == "ES256"]))
		}
	}
	ts = append(ts, r.targetFixed())
	ts = append(ts, r.targetMem("replay store: heap per entry at 1,000,000 entries", "BenchmarkMemoryFootprint", "B/entry", 150))
	ts = append(ts, r.targetMem("token cache: heap per entry at 100,000 entries (RFC 9068 access tokens)", "BenchmarkTokenCacheMemory/rfc9068", "B/entry", 512))
	return ts
}

// cachedVsFloor is the median over the rounds of f(the cached bearer's
// run, the floor's run): each round measures the two seconds apart, so a
// change in the machine's speed between rounds falls on both.
func (r *report) cachedVsFloor(f func(cached, floor *Result) float64) (float64, bool) {
	return perRound(r.runs(scCached, srvExt), r.runs(scFloor, srvFloor), f)
}

// floorCPURatio is the floor's server CPU per Check ÷ x's.
func floorCPURatio(x, floor *Result) float64 { return cpu(floor) / cpu(x) }

// cpuOver is x's server CPU per Check over the floor's.
func cpuOver(x, floor *Result) float64 { return cpu(x) - cpu(floor) }

// targetCached is the cached bearer against the floor, on server CPU per
// Check (the primary figure: with pinned cores the load generator, not the
// server, may bound checks/s), checks/s beside it.
func (r *report) targetCached() target {
	floor, cached := r.get(scFloor, srvFloor), r.get(scCached, srvExt)
	t := target{name: "cached bearer: the floor's server CPU per Check ÷ extauthz's ≥ 0.92", limit: "≥ 0.92"}
	if ratio, ok := r.cachedVsFloor(floorCPURatio); ok {
		rateRatio, _ := r.cachedVsFloor(func(x, y *Result) float64 { return rate(x) / rate(y) })
		t.known, t.met = true, ratio >= 0.92
		t.measured = fmt.Sprintf("%.2f (medians: %.1f vs %.1f µs; checks/s ratio %.2f, %.0f vs %.0f)", ratio, floor.cpu, cached.cpu, rateRatio, cached.rate, floor.rate)
		if m, lo, hi, ok := r.sameTimeRatio(); ok {
			t.measured += fmt.Sprintf("; %.2f measured at the same time (%.2f–%.2f)", m, lo, hi)
		}
		if !t.met {
			t.miss = fmt.Sprintf("missed by %s", pct(1-ratio/0.92))
			// Round by round, as the ratio: a difference of two medians
			// can even come out negative on a noisy machine.
			over, _ := r.cachedVsFloor(cpuOver)
			t.why = fmt.Sprintf("Per round, a cached-bearer Check costs %.1f µs of server CPU over the floor's (median %.1f µs): decoding the whole CheckRequest into the request view (the floor decodes nothing), selecting the rule, the token cache lookup, the claims checks, the header's value and building and encoding the response.",
				over, floor.cpu)
			if cb, ok := r.bench("BenchmarkCheck/cached_bearer"); ok {
				t.why += fmt.Sprintf(" In process, the Check itself (without gRPC and decoding) takes %.1f µs and %.0f allocations.", cb.Metrics["ns/op"]/1e3, cb.Metrics["allocs/op"])
			}
			if d, ok := r.bench("BenchmarkDecodeCheckRequest/view"); ok {
				t.why += fmt.Sprintf(" Decoding the bench's CheckRequest into the view takes %.1f µs (%.0f allocations) in process.", d.Metrics["ns/op"]/1e3, d.Metrics["allocs/op"])
			}
			t.why += r.cachedSplit.why(cached.cpu)
		}
	}
	return t
}

// why is the profiled split of a cached Check in the server, for the
// cached target's reason, in µs of cpu (the rounds' median server CPU per
// cached Check); "" without a profile.
func (sp *cachedSplit) why(cpu float64) string {
	switch {
	case sp == nil:
		return ""
	case len(sp.missing) > 0:
		return fmt.Sprintf(" extauthz's binary has no %s (renamed), so its profile is not split here.", strings.Join(sp.missing, ", "))
	}
	sh := sp.shares
	own := sh["decode"] + sh["check"] + sh["encode"]
	return fmt.Sprintf(" In the server the same work costs more, as what a Check reads is no longer in the CPU's caches: a CPU profile of one more cached run (%.1f s of CPU sampled) puts %.0f%% of extauthz's server CPU in its own work, %.1f µs of the rounds' median %.1f µs per Check: decoding the CheckRequest %.1f µs (copying the message out of gRPC's buffers %.1f µs of it), the Check %.1f µs and encoding the response %.1f µs. The rest is gRPC's and the Go runtime's, work the floor does too.",
		sp.sampled.Seconds(), 100*own, own*cpu, cpu, sh["decode"]*cpu, sh["copy"]*cpu, sh["check"]*cpu, sh["encode"]*cpu)
}

// targetDistinctES256 is new ES256 tokens against what the floor and one
// raw verify predict, round by round: each round samples the raw verify a
// few seconds before the floor.
func (r *report) targetDistinctES256() target {
	floor, floorRuns := r.get(scFloor, srvFloor), r.runs(scFloor, srvFloor)
	esRuns := r.runs(scDistinct("ES256"), srvExt)
	raws := r.rawVerify["ES256"]
	t := target{name: "distinct ES256 bearer: (floor + raw ES256 verify) ÷ extauthz's server CPU per Check ≥ 0.90", limit: "≥ 0.90"}
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
			if cachedOver, ok := r.cachedVsFloor(cpuOver); ok {
				t.why += fmt.Sprintf(" (the cached bearer costs %.1f µs over the floor)", cachedOver)
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
	return t
}

// targetPeer is extauthz against a peer, on server CPU per Check, checks/s
// beside.
func (r *report) targetPeer(scenario, server string, want float64) target {
	floor := r.get(scFloor, srvFloor)
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

// p99Limit is issue #13's tail target: extauthz's cached p99 at most this
// many times the floor's, at half the floor's maximum rate.
const p99Limit = 1.3

// targetFixed compares the p99 at a fixed rate, round by round.
func (r *report) targetFixed() target {
	ff, fe := r.get(scFixed, srvFloor), r.get(scFixed, srvExt)
	t := target{name: fmt.Sprintf("at half the floor's max rate (%.0f/s, the median of the rounds), cached-bearer p99 ≤ %.1f × the floor's p99", r.rate(scFixed), p99Limit), limit: fmt.Sprintf("≤ %.1f×", p99Limit)}
	if ratio, ok := perRound(r.runs(scFixed, srvExt), r.runs(scFixed, srvFloor), func(x, y *Result) float64 {
		return float64(x.Percentile(99)) / float64(y.Percentile(99))
	}); ok {
		t.known, t.met = true, ratio <= p99Limit
		t.measured = fmt.Sprintf("%.2f× (medians: %.0f vs %.0f µs)", ratio, fe.p99, ff.p99)
		// Per-round extremes of both p99s: when either swings tenfold
		// between rounds, a Check's microseconds do not set it.
		fl, fh := p99Range(r.runs(scFixed, srvFloor))
		el, eh := p99Range(r.runs(scFixed, srvExt))
		stalls := fh > 10*fl || eh > 10*el
		if ff.p99 > 2*fe.p99 {
			// A no-op server's tail above extauthz's is the machine's or
			// the floor's, not a measure of extauthz; say so by the figure.
			t.measured += "; the floor's own p99 is the larger, so this bounds little"
		}
		if !t.met {
			t.miss = fmt.Sprintf("missed by %s", pct(ratio/p99Limit-1))
			if stalls {
				t.why = fmt.Sprintf("Round by round the floor's p99 ran from %.0f to %.0f µs and extauthz's from %.0f to %.0f µs, while a cached Check costs %.1f µs more server CPU than the floor's: tails of milliseconds are stalls of the whole machine (%s; %.2f cores busy outside the bench on average), which fall on one server or the other in a round by chance; the per-round median compares those, not the servers.", fl, fh, el, eh, fe.cpu-ff.cpu, r.pin.mode(), r.otherCores)
			} else {
				t.why = fmt.Sprintf("At this rate a cached Check costs %.1f µs more server CPU than the floor's, yet its p99 is %.0f µs higher: the tail is queueing (%s) behind each server's own work and other processes (%.2f cores busy outside the bench on average).", fe.cpu-ff.cpu, fe.p99-ff.p99, r.pin.mode(), r.otherCores)
			}
		}
	}
	return t
}

// p99Range is the lowest and highest p99 of rs, in µs.
func p99Range(rs []*Result) (lo, hi float64) {
	lo = math.Inf(1)
	for _, x := range rs {
		v := us(x.Percentile(99))
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

// targetMem is a memory target read from an in-process benchmark.
func (r *report) targetMem(name, bench, unit string, limit float64) target {
	t := target{name: name, limit: fmt.Sprintf("≤ %.0f B", limit), inProcess: true}
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
			t.why = fmt.Sprintf("%.0f B of an entry is the compact token (the decoded payload, the header members and the registered claims lifted out of it; no claims map) and %.0f B the LRU's bookkeeping (map slot, links, issuer and key).", tok, v-tok)
		}
	}
	return t
}
