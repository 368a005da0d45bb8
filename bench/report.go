package bench

import (
	"runtime"
	"slices"
	"time"
)

// The report is the run's results and the queries its sections and targets
// make of them: report_targets.go holds the targets, report_write.go the
// document and its order, report_sections.go the sections.

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
	// sameTime is, per round, the floor and extauthz on the cached token
	// measured at the same time on the same cores (runSameTime).
	sameTime [][2]*Result
	// cachedSplit is the cached bearer's server CPU split by a profile
	// (profileCached); nil without one.
	cachedSplit *cachedSplit
	gobench     []goBench
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
