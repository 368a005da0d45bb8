package bench

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/bench/mint"
	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/token"
)

func TestCodecReadsStatus(t *testing.T) {
	for _, code := range []codes.Code{codes.OK, codes.PermissionDenied, codes.Unauthenticated} {
		b := marshal(&authv3.CheckResponse{
			Status: &status.Status{Code: int32(code), Message: "x"},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
				Body:   strings.Repeat("b", 300),
			}},
		})
		var st checkStatus
		if err := (rawCodec{}).Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.code != int32(code) || st.http != 503 {
			t.Errorf("code %d, HTTP %d; want %d, 503", st.code, st.http, code)
		}
	}
	var st checkStatus
	st.code = 7
	if err := (rawCodec{}).Unmarshal(nil, &st); err != nil || st.code != 0 {
		t.Errorf("empty response: code %d, err %v; want OK", st.code, err)
	}
}

func TestRequestsCarryTheCredential(t *testing.T) {
	k, err := mint.NewKeys("t", "ES256")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.ByAlg["ES256"].Sign("at+jwt", map[string]any{"iss": Issuer})
	if err != nil {
		t.Fatal(err)
	}
	h := BearerCheck(tok, 1).GetAttributes().GetRequest().GetHttp()
	if h.GetHeaders()["authorization"] != "Bearer "+tok || h.GetHost() != APIHost || h.GetMethod() != "GET" {
		t.Errorf("bearer request: %v", h)
	}
	a := AssertionCheck(tok, 1).GetAttributes().GetRequest().GetHttp()
	if !strings.Contains(a.GetBody(), "client_assertion="+tok) || a.GetHeaders()["content-type"] != "application/x-www-form-urlencoded" {
		t.Errorf("assertion request: %v", a)
	}
	if tamper(tok) == tok {
		t.Error("tamper changed nothing")
	}
}

// TestDPoPCredentials checks the DPoP scenario's credentials with the
// server's own verifier: each proof describes its request, binds its token
// by ath and is by the key the token's cnf.jkt names; no jti repeats.
func TestDPoPCredentials(t *testing.T) {
	idp, err := mint.NewKeys("idp", "ES256")
	if err != nil {
		t.Fatal(err)
	}
	clients, err := NewDPoPClients()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	creds, err := MintDPoP(idp.ByAlg["ES256"], clients, 2*len(clients), now)
	if err != nil {
		t.Fatal(err)
	}
	jtis := map[string]bool{}
	for i, c := range creds {
		h := DPoPCheck(c, i).GetAttributes().GetRequest().GetHttp()
		if h.GetHeaders()["authorization"] != "DPoP "+c.Token || h.GetHost() != DPoPHost {
			t.Fatalf("request %d: %v", i, h)
		}
		path, _, _ := strings.Cut(h.GetPath(), "?")
		p, err := dpop.Verify(h.GetHeaders()["dpop"], dpop.Request{Method: h.GetMethod(), Scheme: h.GetScheme(), Authority: h.GetHost(), Path: path},
			&dpop.Options{Algorithms: []string{"ES256"}, AccessToken: c.Token}, now)
		if err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
		tok, err := token.Parse(c.Token, token.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		cnf, _ := tok.Claims()["cnf"].(map[string]any)
		if cnf["jkt"] != p.JKT || p.JKT != clients[i%len(clients)].Thumbprint() {
			t.Errorf("token %d: cnf %v, proof key %s", i, tok.Claims()["cnf"], p.JKT)
		}
		for _, jti := range []string{p.JTI, tok.Claims()["jti"].(string)} {
			if jtis[jti] {
				t.Errorf("jti %s repeats", jti)
			}
			jtis[jti] = true
		}
	}
	if _, err := dpop.Verify(tamper(creds[0].Proof), dpop.Request{Method: "GET", Scheme: "https", Authority: DPoPHost, Path: APIPath},
		&dpop.Options{AccessToken: creds[0].Token}, now); err == nil {
		t.Error("a forged proof verifies")
	}
}

func TestScenarioKeys(t *testing.T) {
	names := []string{scFloor, scCached, scDPoP, scAssertMem, scAssertRedis, scFixed, scTxToken}
	for _, alg := range mint.Algs {
		names = append(names, scDistinct(alg))
	}
	for _, sc := range names {
		if k := scenarioKey(sc); !slices.Contains(ScenarioKeys(), k) {
			t.Errorf("scenario %q has key %q, not one of %v", sc, k, ScenarioKeys())
		}
	}
	all, some := Defaults(), Defaults()
	some.Scenarios = []string{keyDPoP}
	if all.Partial() || !some.Partial() || !some.wants(keyFloor) || some.wants(keyCached) || some.wantsPeers() {
		t.Errorf("all: partial %v; dpop only: partial %v, floor %v, cached %v, peers %v",
			all.Partial(), some.Partial(), some.wants(keyFloor), some.wants(keyCached), some.wantsPeers())
	}
	some.Scenarios = []string{"dpop", "nope"}
	if some.checkScenarios() == nil {
		t.Error("an unknown scenario is accepted")
	}
}

// TestNoopUnderLoad runs the no-op server in process and drives it the way
// the bench drives every server, closed loop then fixed rate.
func TestNoopUnderLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	go func() { _ = ServeNoop(ctx, "127.0.0.1:0", pw) }()
	line := make([]byte, 64)
	n, err := pr.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := strings.TrimSpace(strings.TrimPrefix(string(line[:n]), "serving "))
	tg := &Target{Name: "noop", Addr: addr, Proc: nil}
	if err := tg.Dial(2); err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	src := NewCycle([][]byte{BearerRequest("a.b.c", 0), BearerRequest("d.e.f", 1)})
	r, err := ClosedLoop(ctx, tg, src, 4, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checks == 0 || r.Denied != 0 || r.Errors != 0 || len(r.Lat) != r.Checks {
		t.Fatalf("closed loop: %+v", r)
	}
	if r.Percentile(50) > r.Percentile(99) {
		t.Errorf("p50 %s > p99 %s", r.Percentile(50), r.Percentile(99))
	}
	r, err = FixedRate(ctx, tg, src, 500, 8, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checks < 90 || r.Checks > 110 {
		t.Errorf("fixed rate 500/s for 200ms sent %d", r.Checks)
	}
	one := NewOneShot([][]byte{BearerRequest("a.b.c", 0)})
	r, err = ClosedLoop(ctx, tg, one, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checks != 1 || !r.Exhausted {
		t.Errorf("one-shot: %d checks, exhausted %v", r.Checks, r.Exhausted)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/extauthz/extauthz/internal/check
BenchmarkCheck/cached_bearer-2         	  300000	      4010 ns/op	    2392 B/op	      46 allocs/op
BenchmarkTokenCacheMemory-2            	       1	2509419463 ns/op	      1611 B/entry	      1404 B/token	500555912 B/op	 3394962 allocs/op
PASS
`
	bs := parseGoBench(out)
	if len(bs) != 2 {
		t.Fatalf("%d benchmarks, want 2", len(bs))
	}
	if bs[0].Pkg != "internal/check" || bs[0].Name != "BenchmarkCheck/cached_bearer" || bs[0].Metrics["allocs/op"] != 46 {
		t.Errorf("first: %+v", bs[0])
	}
	if bs[1].Metrics["B/entry"] != 1611 || bs[1].Metrics["B/token"] != 1404 {
		t.Errorf("second: %+v", bs[1])
	}
}

// TestReport renders a report from made-up results: the Markdown names
// every target and the chart is well-formed SVG.
func TestReport(t *testing.T) {
	res := func(rate float64, cpu time.Duration) *Result {
		n := int(rate)
		lat := []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, 900 * time.Microsecond}
		return &Result{Checks: n, Elapsed: time.Second, ServerCP: cpu * time.Duration(n), LoadCPU: 30 * time.Microsecond * time.Duration(n), Lat: lat}
	}
	r := &report{cfg: Defaults(), rawVerify: map[string][]float64{"ES256": {60}}, tokenCache: 10000}
	r.cfg.Command = "go run ./bench/cmd/extauthz-bench"
	add := func(sc, srv string, rate float64, cpu time.Duration) {
		r.pairs = append(r.pairs, &pair{scenario: sc, server: srv, runs: []*Result{res(rate, cpu), res(rate*1.1, cpu)}})
	}
	add(scFloor, srvFloor, 20000, 45*time.Microsecond)
	add(scBare, srvFloor, 22000, 40*time.Microsecond)
	add(scCached, srvExt, 18000, 48*time.Microsecond)
	add(scCached, srvOPA, 3000, 500*time.Microsecond)
	add(scDistinct("ES256"), srvExt, 8000, 120*time.Microsecond)
	add(scDistinct("ES256"), srvHeimdall, 5000, 200*time.Microsecond)
	add(scDPoP, srvExt, 4000, 250*time.Microsecond)
	add(scFixed, srvFloor, 10000, 45*time.Microsecond)
	add(scFixed, srvExt, 10000, 50*time.Microsecond)
	for _, p := range r.pairs {
		if isFixed(p.scenario) {
			for _, x := range p.runs {
				x.Rate0 = 10000
			}
		}
	}
	// Measured at the same time: 45 ÷ 50 and 45 ÷ 60 µs.
	r.sameTime = [][2]*Result{{res(9000, 45*time.Microsecond), res(8000, 50*time.Microsecond)}, {res(9000, 45*time.Microsecond), res(7000, 60*time.Microsecond)}}
	ts := r.targets()
	if len(ts) < 6 {
		t.Fatalf("%d targets", len(ts))
	}
	if !ts[0].known || !ts[0].met {
		t.Errorf("cached vs floor: %+v", ts[0])
	}
	var md strings.Builder
	r.writeDPoP(func(format string, args ...any) { fmt.Fprintf(&md, format, args...) })
	// 250 µs against 45 + 2 × 60 µs.
	if !strings.Contains(md.String(), "| 45.0 + 2 × 60.0 = 165.0 |") || !strings.Contains(md.String(), "| 1.52× |") {
		t.Errorf("DPoP section:\n%s", md.String())
	}
	r.cfg.Out = filepath.Join(t.TempDir(), "benchmarks.md")
	if err := r.write(); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(r.cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "%!") {
		t.Errorf("a format verb without its argument:\n%s", doc)
	}
	if !strings.Contains(string(doc), "extauthz's is 0.82 (median of 2 rounds, 0.75 to 0.90)") || !strings.Contains(ts[0].measured, "; 0.82 measured at the same time (0.75–0.90)") {
		t.Errorf("the report lacks the same-time ratio: %q\n%s", ts[0].measured, doc)
	}
	if !strings.Contains(string(doc), "| floor over the bare call | +5.0 |") {
		t.Errorf("the report lacks the floor against the bare call:\n%s", doc)
	}
	if !strings.Contains(string(doc), "| "+scDPoP+" | 0.20 | 250.0 | +205.0 µs | 2 × 60.0 = 120.0 | +85.0 µs |") {
		t.Errorf("the floor table lacks the DPoP row:\n%s", doc)
	}
	// A disturbed run establishes no target measured under load.
	r.otherCores = 0.3
	var dist strings.Builder
	r.writeTargets(func(format string, args ...any) { fmt.Fprintf(&dist, format, args...) })
	if !strings.Contains(dist.String(), "| met in a disturbed run: not established |") || !strings.Contains(dist.String(), "no target measured under load counts as met") {
		t.Errorf("a disturbed run's targets:\n%s", dist.String())
	}
	r.otherCores = 0
	svg := r.chart()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed: %v", err)
		}
	}
	for _, want := range []string{scCached, srvOPA, srvHeimdall, "checks/s"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}

func TestMediansOfCounts(t *testing.T) {
	out := `pkg: github.com/extauthz/extauthz/internal/token
BenchmarkParse-2   	 100	 5000 ns/op	 2616 B/op	 25 allocs/op
BenchmarkParse-2   	 100	 9000 ns/op	 2616 B/op	 25 allocs/op
BenchmarkParse-2   	 100	 6000 ns/op	 2616 B/op	 25 allocs/op
`
	bs := medians(parseGoBench(out))
	if len(bs) != 1 || bs[0].Metrics["ns/op"] != 6000 || bs[0].Metrics["allocs/op"] != 25 {
		t.Fatalf("medians: %+v", bs)
	}
}

func TestPinning(t *testing.T) {
	off := planPinning(false)
	if off.on || !strings.Contains(off.mode(), "not pinned") {
		t.Errorf("-pin=false: %+v, %s", off, off.mode())
	}
	if bin, args := off.command("x", []string{"a"}); bin != "x" || len(args) != 1 {
		t.Errorf("unpinned command: %s %v", bin, args)
	}
	p := planPinning(true)
	if !p.on {
		t.Skipf("no pinning here: %s", p.mode())
	}
	if bin, args := p.command("x", []string{"a"}); bin != p.taskset || strings.Join(args, " ") != "-c "+p.serverSet+" x a" {
		t.Errorf("pinned command: %s %v", bin, args)
	}
	if err := p.pinSelf(); err != nil {
		t.Fatal(err)
	}
	if got := schedCores(); cpuList(got) != p.loadSet {
		t.Errorf("pinned to %v, want %s", got, p.loadSet)
	}
	p.unpinSelf()
	if got := schedCores(); len(got) != len(p.server)+len(p.loadgen) {
		t.Errorf("unpinned to %v", got)
	}
}

// TestTailTargetReason: a tail missed because p99s swing tenfold between
// rounds is put down to stalls with the per-round ranges; a steady one to
// queueing; a floor tail above extauthz's is flagged beside the figure.
func TestTailTargetReason(t *testing.T) {
	res := func(p99 time.Duration) *Result {
		lat := make([]time.Duration, 100)
		for i := range lat {
			lat[i] = 100 * time.Microsecond
		}
		for i := 95; i < 100; i++ {
			lat[i] = p99
		}
		return &Result{Checks: 100, Elapsed: time.Second, ServerCP: 3 * time.Millisecond, Lat: lat, Rate0: 100}
	}
	fixed := func(floor, ext []time.Duration) target {
		r := &report{cfg: Defaults()}
		f, e := &pair{scenario: scFixed, server: srvFloor}, &pair{scenario: scFixed, server: srvExt}
		for i := range floor {
			f.runs, e.runs = append(f.runs, res(floor[i])), append(e.runs, res(ext[i]))
		}
		r.pairs = []*pair{f, e}
		return r.targetFixed()
	}
	ms := time.Millisecond
	if tg := fixed([]time.Duration{ms, ms, ms}, []time.Duration{50 * ms, 2 * ms, 40 * ms}); tg.met || !strings.Contains(tg.why, "stalls") || !strings.Contains(tg.why, "from 2000 to 50000 µs") {
		t.Errorf("swinging tails: %+v", tg)
	}
	if tg := fixed([]time.Duration{ms, ms, ms}, []time.Duration{3 * ms, 3 * ms, 3 * ms}); tg.met || !strings.Contains(tg.why, "queueing") {
		t.Errorf("steady tails: %+v", tg)
	}
	if tg := fixed([]time.Duration{9 * ms, 9 * ms, 9 * ms}, []time.Duration{ms, ms, ms}); !tg.met || !strings.Contains(tg.measured, "bounds little") {
		t.Errorf("floor's tail the larger: %+v", tg)
	}
}
