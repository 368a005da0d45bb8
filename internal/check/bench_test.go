package check

// Benchmarks of a whole Check per path, through (*Server).Check with no
// gRPC, on the policy `make bench` serves end to end
// (bench/extauthz/policy.yaml and its DPoP rule, bench.DPoPPolicy), and of
// the token cache's memory. `make bench` reports them; `make test` runs
// each once.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/bench"
	"github.com/extauthz/extauthz/bench/mint"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/token"
)

// benchEnv is the keys and the loaded policy, made once per test binary:
// RSA keys take a while to generate.
type benchEnv struct {
	idp, client *mint.Keys
	dpop        []*mint.Key // the DPoP clients' keys
	store       *policy.Store
	now         time.Time
}

var benchSetup = sync.OnceValues(func() (*benchEnv, error) {
	idp, err := mint.NewKeys("idp", mint.Algs...)
	if err != nil {
		return nil, err
	}
	client, err := mint.NewKeys("client", "ES256")
	if err != nil {
		return nil, err
	}
	dpopClients, err := bench.NewDPoPClients()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	jwks, clients := idp.JWKS(), client.JWKS()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) { w.Write(jwks) })
	mux.HandleFunc("/clients", func(w http.ResponseWriter, _ *http.Request) { w.Write(clients) })
	srv := httptest.NewServer(mux)
	// The key sets are fetched once, below; the server may then go.
	defer srv.Close()

	tmpl, err := os.ReadFile(filepath.Join("..", "..", "bench", "extauthz", "policy.yaml"))
	if err != nil {
		return nil, err
	}
	doc := strings.NewReplacer("{{JWKS_URL}}", srv.URL+"/jwks", "{{CLIENTS_URL}}", srv.URL+"/clients").Replace(string(tmpl))
	dir, err := os.MkdirTemp("", "check-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file, dpopFile := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "policy-dpop.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(dpopFile, []byte(bench.DPoPPolicy), 0o600); err != nil {
		return nil, err
	}
	txFile := filepath.Join(dir, "policy-txtoken.yaml")
	if err := os.WriteFile(txFile, []byte(bench.TxPolicy), 0o600); err != nil {
		return nil, err
	}
	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		return nil, err
	}
	snap, err := policy.Load([]string{file, dpopFile, txFile}, policy.Options{Keys: plane})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plane.Prefetch(ctx, snap.RemoteSources())
	return &benchEnv{idp: idp, client: client, dpop: dpopClients, store: policy.NewStore(snap), now: time.Now()}, nil
})

func benchEnvFor(tb testing.TB) *benchEnv {
	tb.Helper()
	env, err := benchSetup()
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// bearer is the bench's ES256 access token (the first of its cycle) and a
// Server on the bench policy with the default token cache.
func (e *benchEnv) bearer(tb testing.TB) (string, *Server) {
	tb.Helper()
	tok, err := e.idp.ByAlg["ES256"].Sign("at+jwt", e.bearerClaims(0))
	if err != nil {
		tb.Fatal(err)
	}
	return tok, e.server(0, replay.NewMemory(replay.MemoryConfig{}))
}

func (e *benchEnv) bearerClaims(i int) map[string]any {
	return map[string]any{
		"iss": bench.Issuer, "sub": fmt.Sprintf("user-%d", i), "aud": bench.Audience,
		"client_id": bench.ClientID, "scope": "openid read write",
		"iat": e.now.Unix(), "exp": e.now.Add(2 * time.Hour).Unix(),
		"jti": fmt.Sprintf("%016x-%08x", e.now.UnixNano(), i),
	}
}

// benchServer is a Server on the bench policy with a token cache of
// cacheSize (negative: off) and the replay store rs.
func (e *benchEnv) server(cacheSize int, rs replay.Store) *Server {
	return New(Config{Policy: e.store, Replay: rs, TokenCacheSize: cacheSize})
}

// served is req as Register's handler has it: decoded from the wire into
// the request view, once. Each Check is given a copy, since a Check takes
// its memory from the view's scratch.
func served(tb testing.TB, req *authv3.CheckRequest) *decodedCheck {
	tb.Helper()
	d := &decodedCheck{}
	wire, err := proto.Marshal(req)
	if err != nil || !decodeView(wire, d) {
		tb.Fatalf("not decoded as a view: %v", err)
	}
	return d
}

// allow runs a Check of a copy of d and fails unless it allows.
func allow(tb testing.TB, srv *Server, d *decodedCheck) {
	c := &decodedCheck{ext: d.ext}
	c.scratch.req = d.scratch.req
	resp, err := srv.checkDecoded(context.Background(), c)
	if err != nil {
		tb.Fatal(err)
	}
	if c := resp.GetStatus().GetCode(); c != 0 {
		tb.Fatalf("denied (code %d): %v", c, resp.GetDynamicMetadata())
	}
}

// BenchmarkCheck is a whole Check of a decoded request (the view
// Register's handler decodes) for each credential path:
//   - cached_bearer: the same ES256 token every time (token cache hit);
//   - new_bearer_<alg>: a cycle of tokens larger than the token cache, so
//     every Check parses and verifies;
//   - client_assertion: a fresh ES256 RFC 7523 assertion every time, with
//     the memory replay store.
func BenchmarkCheck(b *testing.B) {
	env := benchEnvFor(b)
	b.Run("cached_bearer", func(b *testing.B) {
		tok, srv := env.bearer(b)
		req := served(b, bench.BearerCheck(tok, 0))
		allow(b, srv, req)
		b.ReportAllocs()
		for b.Loop() {
			allow(b, srv, req)
		}
	})
	// A strict LRU cycled through twice its size never hits.
	const pool, cache = 256, 128
	for _, alg := range mint.Algs {
		b.Run("new_bearer_"+alg, func(b *testing.B) {
			toks, err := env.idp.ByAlg[alg].SignMany(pool, "at+jwt", env.bearerClaims)
			if err != nil {
				b.Fatal(err)
			}
			reqs := make([]*decodedCheck, pool)
			for i, t := range toks {
				reqs[i] = served(b, bench.BearerCheck(t, i))
			}
			srv := env.server(cache, replay.NewMemory(replay.MemoryConfig{}))
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				allow(b, srv, reqs[i%pool])
				i++
			}
		})
	}
	b.Run("client_assertion", func(b *testing.B) {
		const pool = 2048
		toks, err := env.client.ByAlg["ES256"].SignMany(pool, "", func(i int) map[string]any {
			return map[string]any{
				"iss": bench.ClientID, "sub": bench.ClientID, "aud": bench.TokenEndpoint,
				"iat": env.now.Unix(), "exp": env.now.Add(20 * time.Minute).Unix(),
				"jti": fmt.Sprintf("%016x-%08x", env.now.UnixNano(), i),
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		reqs := make([]*decodedCheck, pool)
		for i, t := range toks {
			reqs[i] = served(b, bench.AssertionCheck(t, i))
		}
		// Each assertion is accepted once per store: when the pool wraps,
		// a fresh store (outside the timer) makes them new again.
		rs := &benchReplay{}
		rs.cur.Store(replay.NewMemory(replay.MemoryConfig{}))
		srv := env.server(0, rs)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if i > 0 && i%pool == 0 {
				b.StopTimer()
				rs.cur.Store(replay.NewMemory(replay.MemoryConfig{}))
				b.StartTimer()
			}
			allow(b, srv, reqs[i%pool])
			i++
		}
	})
}

// BenchmarkCheckDPoP is a whole Check of a DPoP-bound ES256 access token
// (cnf.jkt) with its ES256 proof, on the bench's `dpop: {mode: required}`
// rule: every iteration a token and a proof never seen before, so both
// signatures are verified, the token cache misses and the proof's jti is
// claimed in the memory replay store. They are spread over the bench's
// DPoP client keys and signed in batches, outside the timer, each batch
// with a fresh iat.
func BenchmarkCheckDPoP(b *testing.B) {
	env := benchEnvFor(b)
	const batch = 512
	srv := env.server(128, replay.NewMemory(replay.MemoryConfig{}))
	reqs := make([]*decodedCheck, batch)
	sign := func() {
		creds, err := bench.MintDPoP(env.idp.ByAlg["ES256"], env.dpop, batch, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		for i, c := range creds {
			reqs[i] = served(b, bench.DPoPCheck(c, i))
		}
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i%batch == 0 {
			b.StopTimer()
			sign()
			b.StartTimer()
		}
		allow(b, srv, reqs[i%batch])
		i++
	}
}

// benchReplay is a memory store the benchmark can swap for an empty one.
type benchReplay struct{ cur atomic.Pointer[replay.Memory] }

func (r *benchReplay) Claim(ctx context.Context, issuer, jti string, until time.Time) error {
	return r.cur.Load().Claim(ctx, issuer, jti, until)
}

// BenchmarkTokenCacheMemory fills the verified-token cache with 100,000
// parsed access tokens and reports the heap each entry keeps: the compact
// token (payload and lifted registered claims, no claims map), the LRU's
// node and map slot, and the entry. The target is 512 B for rfc9068. rfc9068 tokens carry
// the claims RFC 9068 requires plus scope (what the bench's tokens carry);
// rich ones add what many identity providers put in besides.
func BenchmarkTokenCacheMemory(b *testing.B) {
	env := benchEnvFor(b)
	t0 := env.now.Unix()
	shapes := []struct {
		name   string
		claims func(i int) string
	}{
		{"rfc9068", func(i int) string {
			return fmt.Sprintf(`{"iss":%q,"sub":"user-%08d","aud":%q,"client_id":"client-%05d","scope":"openid read write","iat":%d,"exp":%d,"jti":"%016x-%08x"}`,
				bench.Issuer, i, bench.Audience, i%5000, t0, t0+3600, env.now.UnixNano(), i)
		}},
		{"rich", func(i int) string {
			return fmt.Sprintf(`{"iss":%q,"sub":"user-%08d","aud":[%q,"https://graph.example.com"],"client_id":"client-%05d","azp":"client-%05d","scope":"openid profile email read write","iat":%d,"nbf":%d,"exp":%d,"auth_time":%d,"jti":"%016x-%08x","acr":"urn:mace:incommon:iap:silver","amr":["pwd","mfa"],"sid":"%016x","email":"user-%08d@example.com","name":"User %d","groups":["staff","reports-readers"]}`,
				bench.Issuer, i, bench.Audience, i%5000, i%5000, t0, t0, t0+3600, t0, env.now.UnixNano(), i, i, i, i)
		}},
	}
	for _, shape := range shapes {
		b.Run(shape.name, func(b *testing.B) {
			perEntry, perToken := tokenCacheHeap(b, env, shape.claims)
			b.ReportMetric(perEntry, "B/entry")
			// B/token is the compact token's share of an entry (its string
			// of payload and header members, and the token.Compact struct);
			// the rest is the LRU's node and map slot and the entry's other
			// fields.
			b.ReportMetric(perToken, "B/token")
		})
	}
}

func tokenCacheHeap(b *testing.B, env *benchEnv, payload func(i int) string) (perEntry, perToken float64) {
	const entries = 100_000
	is := env.store.Load().Issuers["idp"]
	ks, err := is.Keys.Keys(context.Background(), "idp-ES256")
	if err != nil || len(ks) == 0 {
		b.Fatalf("issuer keys: %v", err)
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"idp-ES256","typ":"at+jwt"}`))
	sig := base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	raws := make([]string, entries)
	for i := range raws {
		raws[i] = header + "." + base64.RawURLEncoding.EncodeToString([]byte(payload(i))) + "." + sig
	}
	for b.Loop() {
		// The compact tokens alone, less the slice that holds them here.
		before := benchHeap()
		cts := make([]token.Compact, entries)
		for i, raw := range raws {
			tok, err := token.Parse(raw, token.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			cts[i], _ = tok.Compact()
		}
		perToken = float64(benchHeap()-before) / entries
		runtime.KeepAlive(cts)
		cts = nil

		before = benchHeap()
		c := newTokenCache(entries)
		for _, raw := range raws {
			// The signature is not checked here: the cache only ever
			// holds verified tokens, and what it keeps is the same.
			tok, err := token.Parse(raw, token.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			c.add(token.DigestOf(raw).Sum, tok, is, ks[0], nil)
		}
		if c.Len() != entries {
			b.Fatalf("%d entries, want %d", c.Len(), entries)
		}
		perEntry = float64(benchHeap()-before) / entries
		runtime.KeepAlive(c)
	}
	return perEntry, perToken
}

// benchHeap is the live heap after a full collection.
func benchHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkDecodeCheckRequest is the server codec's decode of the bench's
// cached-bearer CheckRequest, as gRPC hands it the bytes, into the view
// Register's handler reads, and into the message.
func BenchmarkDecodeCheckRequest(b *testing.B) {
	// A token as long as the bench's ES256 access tokens: decoding reads
	// it, nothing verifies it.
	tok := strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 27)[:530]
	raw, err := proto.Marshal(bench.BearerCheck(tok, 1))
	if err != nil {
		b.Fatal(err)
	}
	c := codec{base: encoding.GetCodecV2(grpcproto.Name)}
	data := mem.BufferSlice{mem.SliceBuffer(raw)}
	// As the handler does: a decodedCheck reused, zeroed between Checks.
	b.Run("view", func(b *testing.B) {
		d := new(decodedCheck)
		b.ReportAllocs()
		for b.Loop() {
			*d = decodedCheck{}
			if err := c.Unmarshal(data, d); err != nil || d.msg != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req authv3.CheckRequest
			if err := c.Unmarshal(data, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCheckAllocs guards the allocations of a cached-bearer Check and of a
// new-token one, so a regression fails `make test` (allocation counts do not
// depend on the machine's speed).
func TestCheckAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	env := benchEnvFor(t)
	tok, srv := env.bearer(t)
	req := bench.BearerCheck(tok, 0)
	view := served(t, req)
	allow(t, srv, view)
	// The copy of the decoded request.
	const maxCached = 1
	if n := testing.AllocsPerRun(200, func() { allow(t, srv, view) }); n > maxCached {
		t.Errorf("a cached-bearer Check allocates %.0f times, want ≤ %d", n, maxCached)
	}
	// As Register's handler serves it: decoded from the wire into the view,
	// checked, encoded and handed to gRPC.
	wire, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	c := codec{base: encoding.GetCodecV2(grpcproto.Name)}
	data := mem.BufferSlice{mem.SliceBuffer(wire)}
	dec := func(v any) error { return c.Unmarshal(data, v) }
	handled := func() mem.BufferSlice {
		v, err := checkHandler(srv, context.Background(), dec, nil)
		if _, ok := v.(*encodedResponse); err != nil || !ok {
			t.Fatalf("handler: %T, %v", v, err)
		}
		out, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var resp authv3.CheckResponse
	if err := proto.Unmarshal(handled().Materialize(), &resp); err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("handled: %v %v", err, &resp)
	}
	// The copy of the bytes the view's strings alias and the BufferSlice
	// handed to gRPC: the Check's memory and the response's buffer (freed
	// by gRPC once written, as here) are reused and no header map is made.
	const maxFromWire = 2
	if n := testing.AllocsPerRun(200, func() { handled().Free() }); n > maxFromWire {
		t.Errorf("a cached-bearer Check served by Register's handler allocates %.0f times, want ≤ %d", n, maxFromWire)
	}
	toks, err := env.idp.ByAlg["ES256"].SignMany(64, "at+jwt", env.bearerClaims)
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]*decodedCheck, len(toks))
	for i, tk := range toks {
		reqs[i] = served(t, bench.BearerCheck(tk, i))
	}
	fresh := env.server(-1, replay.NewMemory(replay.MemoryConfig{}))
	i := 0
	// Ten of them are crypto/ecdsa's; the parse makes two (the Token and
	// one buffer for every decoded segment).
	const maxNew = 16
	if n := testing.AllocsPerRun(64, func() { allow(t, fresh, reqs[i%len(reqs)]); i++ }); n > maxNew {
		t.Errorf("a new-token ES256 Check allocates %.0f times, want ≤ %d", n, maxNew)
	}
}
