package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// A cached-bearer Check's cost beyond the floor's is spent inside the
// server, among gRPC's own work, where an in-process benchmark does not
// see it: the data a Check touches is cold there, so the same code costs
// more. After the rounds, make bench runs the cached bearer once more
// while it takes a CPU profile of extauthz (--debug-pprof), and splits its
// server CPU among the parts below, each the share of samples with the
// part's function anywhere on the stack; the report turns the shares into
// µs of the rounds' CPU per Check.

// profilePart is a part of a Check in the server, by the function that
// does it.
type profilePart struct {
	name, fn string
}

// cachedParts are extauthz's own work in a Check, which the floor does
// not do; decode holds copy. The rest of the server's CPU (gRPC's reading
// and writing, the Go runtime's) is work the floor does too.
var cachedParts = []profilePart{
	{"decode", "github.com/extauthz/extauthz/internal/check.codec.Unmarshal"},
	{"copy", "google.golang.org/grpc/mem.BufferSlice.Materialize"},
	{"check", "github.com/extauthz/extauthz/internal/check.(*Server).checkDecoded"},
	{"encode", "github.com/extauthz/extauthz/internal/check.encodeCheckResponse"},
}

// cpuProfile is a CPU profile reduced to what the split needs: the CPU
// time of all samples and of those with each function on the stack.
type cpuProfile struct {
	total int64
	under map[string]int64
}

// parseProfile reads a pprof CPU profile (gzipped perftools.profiles.Profile
// protobuf, as /debug/pprof/profile serves it), crediting each sample's
// CPU time once to every function on its stack.
func parseProfile(data []byte) (*cpuProfile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bench: profile: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("bench: profile: %w", err)
	}
	var (
		strs      []string
		funcName  = map[uint64]int64{}    // function id → string index
		locFuncs  = map[uint64][]uint64{} // location id → function ids, inlined ones too
		samples   [][]uint64              // location ids per sample
		values    [][]int64
		valueType []int64 // string index of each value's type
	)
	err = eachField(b, func(num protowire.Number, _ protowire.Type, v []byte) error {
		switch num {
		case 1: // sample_type
			return eachField(v, func(n protowire.Number, _ protowire.Type, x []byte) error {
				if n == 1 {
					valueType = append(valueType, int64(varint(x)))
				}
				return nil
			})
		case 2: // sample
			var locs []uint64
			var vals []int64
			err := eachField(v, func(n protowire.Number, _ protowire.Type, x []byte) error {
				switch n {
				case 1:
					locs = append(locs, varints(x)...)
				case 2:
					for _, u := range varints(x) {
						vals = append(vals, int64(u))
					}
				}
				return nil
			})
			samples, values = append(samples, locs), append(values, vals)
			return err
		case 4: // location
			var id uint64
			var fns []uint64
			err := eachField(v, func(n protowire.Number, _ protowire.Type, x []byte) error {
				switch n {
				case 1:
					id = varint(x)
				case 4: // line
					return eachField(x, func(n protowire.Number, _ protowire.Type, y []byte) error {
						if n == 1 {
							fns = append(fns, varint(y))
						}
						return nil
					})
				}
				return nil
			})
			locFuncs[id] = fns
			return err
		case 5: // function
			var id uint64
			var name int64
			err := eachField(v, func(n protowire.Number, _ protowire.Type, x []byte) error {
				switch n {
				case 1:
					id = varint(x)
				case 2:
					name = int64(varint(x))
				}
				return nil
			})
			funcName[id] = name
			return err
		case 6: // string_table
			strs = append(strs, string(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			return ""
		}
		return strs[i]
	}
	// The CPU time value ("cpu", nanoseconds) when the profile has one,
	// else the first (the sample count).
	vi := 0
	for i, t := range valueType {
		if str(t) == "cpu" {
			vi = i
		}
	}
	p := &cpuProfile{under: map[string]int64{}}
	for i, locs := range samples {
		if vi >= len(values[i]) {
			continue
		}
		v := values[i][vi]
		p.total += v
		seen := map[string]bool{}
		for _, l := range locs {
			for _, f := range locFuncs[l] {
				if name := str(funcName[f]); !seen[name] {
					seen[name] = true
					p.under[name] += v
				}
			}
		}
	}
	if p.total == 0 {
		return nil, fmt.Errorf("bench: profile: no samples")
	}
	return p, nil
}

// share is the part of the profile's CPU time spent with fn on the stack.
func (p *cpuProfile) share(fn string) float64 { return float64(p.under[fn]) / float64(p.total) }

func varint(b []byte) uint64 {
	v, _ := protowire.ConsumeVarint(b)
	return v
}

// varints reads a repeated varint field, packed (one run of varints) or
// not (one).
func varints(b []byte) []uint64 {
	var out []uint64
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			break
		}
		out, b = append(out, v), b[n:]
	}
	return out
}

// fetchProfile takes a CPU profile of d from a server's /debug/pprof.
func fetchProfile(ctx context.Context, httpAddr string, d time.Duration) ([]byte, error) {
	secs := max(1, int(d/time.Second))
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: profile: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bench: profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: profile: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// cachedSplit is the share of the profiled run's server CPU that each of
// cachedParts took: shares, not µs, because the profiled run comes after
// the rounds, when the machine may be faster or slower than it was for
// them. missing names parts whose function the binary does not have
// (renamed), which a profile cannot tell from one too small to be sampled.
type cachedSplit struct {
	shares  map[string]float64
	missing []string
	sampled time.Duration // the CPU time the profile's samples stand for
}

// profileRun is the load of the profiled run: ten seconds profiled.
const profileRun = 11 * time.Second

// profileCached runs the cached bearer once more, not recorded, while it
// profiles extauthz, and keeps the split in the report.
func (s *session) profileCached(ctx context.Context) error {
	var p *pair
	for _, q := range s.pairs {
		if q.scenario == scCached && q.server == srvExt {
			p = q
		}
	}
	if p == nil || !s.profiled || s.ext.HTTPAddr == "" {
		return nil
	}
	// Long enough for the small parts to be sampled (100 samples a second).
	c := s.load(p.target, p.reqs, profileRun)
	c.Start, c.Once = p.pos, p.once
	split, err := splitCached(ctx, s.cfg.Self, s.bin, s.ext, c)
	if err != nil {
		s.note(fmt.Sprintf("No in-server split of the cached bearer: %v", err))
		return nil
	}
	s.rep.cachedSplit = split
	s.logf("profiled cached bearer: shares of its server CPU %v", split.shares)
	return nil
}

// splitCached profiles ext, the binary bin, while a load generator runs c
// against it, and splits its server CPU among cachedParts. The profile
// leaves out the load's first and last half second, so it sees only the
// steady state: c.Duration must be two seconds or more.
func splitCached(ctx context.Context, self, bin string, ext *Target, c LoadConfig) (*cachedSplit, error) {
	d := c.Duration - time.Second
	if d < time.Second {
		return nil, fmt.Errorf("bench: profile: a load of %s leaves no second to profile", c.Duration)
	}
	type fetched struct {
		b   []byte
		err error
	}
	done := make(chan fetched, 1)
	go func() {
		select {
		case <-time.After(time.Second / 2):
		case <-ctx.Done():
			done <- fetched{nil, ctx.Err()}
			return
		}
		b, err := fetchProfile(ctx, ext.HTTPAddr, d)
		done <- fetched{b, err}
	}()
	_, err := loadProcess(ctx, self, c)
	f := <-done
	if err != nil {
		return nil, fmt.Errorf("bench: profile: load generator: %w", err)
	}
	if f.err != nil {
		return nil, f.err
	}
	prof, err := parseProfile(f.b)
	if err != nil {
		return nil, err
	}
	syms := symbols(bin)
	split := &cachedSplit{shares: map[string]float64{}, sampled: time.Duration(prof.total)}
	for _, part := range cachedParts {
		if syms != nil && !syms[part.fn] {
			split.missing = append(split.missing, part.fn)
			continue
		}
		split.shares[part.name] = prof.share(part.fn)
	}
	return split, nil
}

// symbols is the function symbols of the ELF binary bin; nil when it has
// none to read (stripped, or not ELF), in which case no part is missing.
func symbols(bin string) map[string]bool {
	f, err := elf.Open(bin)
	if err != nil {
		return nil
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil || len(syms) == 0 {
		return nil
	}
	m := make(map[string]bool, len(syms))
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			m[s.Name] = true
		}
	}
	return m
}
