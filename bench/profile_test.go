package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestParseProfileSplits credits each sample's CPU time once to every
// function on its stack, inlined ones and recursion included.
func TestParseProfileSplits(t *testing.T) {
	msg := func(fields ...func([]byte) []byte) []byte {
		var b []byte
		for _, f := range fields {
			b = f(b)
		}
		return b
	}
	bytesField := func(num protowire.Number, v []byte) func([]byte) []byte {
		return func(b []byte) []byte {
			return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
		}
	}
	varintField := func(num protowire.Number, v uint64) func([]byte) []byte {
		return func(b []byte) []byte {
			return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
		}
	}
	packed := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = protowire.AppendVarint(b, v)
		}
		return b
	}
	var fields []func([]byte) []byte
	for _, s := range []string{"", "samples", "count", "cpu", "nanoseconds", "a", "b", "c"} {
		fields = append(fields, bytesField(6, []byte(s)))
	}
	fields = append(fields,
		bytesField(1, msg(varintField(1, 1), varintField(2, 2))),
		bytesField(1, msg(varintField(1, 3), varintField(2, 4))),
		bytesField(5, msg(varintField(1, 1), varintField(2, 5))),
		bytesField(5, msg(varintField(1, 2), varintField(2, 6))),
		bytesField(5, msg(varintField(1, 3), varintField(2, 7))),
		// Location 10 is a inlined into b; 11 is c.
		bytesField(4, msg(varintField(1, 10), bytesField(4, msg(varintField(1, 1))), bytesField(4, msg(varintField(1, 2))))),
		bytesField(4, msg(varintField(1, 11), bytesField(4, msg(varintField(1, 3))))),
		bytesField(2, msg(bytesField(1, packed(10, 11)), bytesField(2, packed(1, 10)))),
		// Unpacked location ids, as an encoder may write them.
		bytesField(2, msg(varintField(1, 11), bytesField(2, packed(1, 30)))),
		bytesField(2, msg(bytesField(1, packed(10, 10)), bytesField(2, packed(1, 5)))),
	)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(msg(fields...))
	zw.Close()
	p, err := parseProfile(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if p.total != 45 || p.under["a"] != 15 || p.under["b"] != 15 || p.under["c"] != 40 {
		t.Errorf("total %d, under %v; want 45, a 15, b 15, c 40", p.total, p.under)
	}
	if _, err := parseProfile([]byte("not gzip")); err == nil {
		t.Error("a profile that is not gzip parsed")
	}
}

// TestParseProfileRuntime reads a CPU profile Go's runtime wrote, as
// --debug-pprof serves them, of this process spinning in one function.
func TestParseProfileRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("spins for a third of a second of CPU")
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skip(err) // a profile already running, under go test -cpuprofile
	}
	spinForProfile(300 * time.Millisecond)
	pprof.StopCPUProfile()
	p, err := parseProfile(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	const fn = "github.com/extauthz/extauthz/bench.spinForProfile"
	if p.share(fn) < 0.5 {
		t.Errorf("%s: share %.2f of %d ns", fn, p.share(fn), p.total)
	}
}

// spinForProfile burns d of this process's CPU time (not wall-clock time:
// a busy machine only makes it take longer).
//
//go:noinline
func spinForProfile(d time.Duration) {
	end := selfCPU() + d
	x := uint64(1)
	for selfCPU() < end {
		for range 10000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 {
		panic("unreachable")
	}
}

// TestCachedSplitWhy: the cached target's reason names each part in µs
// of the rounds' CPU per Check, and says so when the binary lacks a part's
// function.
func TestCachedSplitWhy(t *testing.T) {
	sp := &cachedSplit{sampled: 9 * time.Second, shares: map[string]float64{"decode": 0.05, "copy": 0.01, "check": 0.1, "encode": 0.02}}
	got := sp.why(20)
	for _, want := range []string{"(9.0 s of CPU sampled)", "puts 17% of extauthz's server CPU in its own work, 3.4 µs of the rounds' median 20.0 µs", "decoding the CheckRequest 1.0 µs", "(copying the message out of gRPC's buffers 0.2 µs", "the Check 2.0 µs", "encoding the response 0.4 µs"} {
		if !strings.Contains(got, want) {
			t.Errorf("why lacks %q:\n%s", want, got)
		}
	}
	if got := (&cachedSplit{missing: []string{"x.f"}}).why(20); !strings.Contains(got, "has no x.f (renamed)") {
		t.Errorf("missing: %s", got)
	}
	if (*cachedSplit)(nil).why(20) != "" {
		t.Error("no profile: a reason")
	}
}

// TestSplitCachedRealServer profiles the real binary under a cached-bearer
// load, as make bench does after its rounds, and finds every part of the
// split in it: a rename of a part's function fails here, not in a report.
func TestSplitCachedRealServer(t *testing.T) {
	bin, self := separateRunTest(t)
	if !ExtauthzHasFlag(bin, "debug-pprof") || !ExtauthzHasFlag(bin, "token-cache-size") || ExtauthzHasFlag(bin, "no-such-flag") {
		t.Fatal("ExtauthzHasFlag misreads serve -h")
	}
	dir := t.TempDir()
	fx, err := newOutsideFixtures(dir, "..", 10)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := startExtauthz(context.Background(), "extauthz", dir, bin, fx.policy, "--debug-pprof")
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Proc.Stop()
	c := LoadConfig{Addr: ext.Addr, Pid: ext.Proc.Pid(), Requests: fx.cached, Concurrency: 4, Conns: 1, Duration: 3 * time.Second}
	split, err := splitCached(context.Background(), self, bin, ext, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(split.missing) > 0 {
		t.Fatalf("the binary lacks %v", split.missing)
	}
	if syms := symbols(bin); syms == nil || syms["github.com/extauthz/extauthz/bench.spinForProfile"] {
		t.Errorf("symbols of %s: %d, the bench's own among them", bin, len(syms))
	}
	sh := split.shares
	if sh["check"] <= 0 || sh["decode"] <= 0 || sh["copy"] > sh["decode"] || sh["decode"]+sh["check"]+sh["encode"] >= 1 {
		t.Errorf("split %+v", split)
	}
}
