package policy_test

// Benchmarks of what the policy costs a Check (rule selection, CEL) and of
// what a large policy costs in memory. `make bench` reports them; `make
// test` runs each once.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/bench/mint"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
)

// benchRules is a policy of 20 rules, the API rule last, so selecting it
// tests every match before it.
func benchRules() string {
	var b strings.Builder
	b.WriteString(`version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: https://login.example.com/jwks
rules:
`)
	for i := range 19 {
		fmt.Fprintf(&b, `  - name: service-%d
    match:
      hosts: [svc-%d.example.com]
      path_prefixes: [/v%d/]
      methods: [GET, POST]
    bearer:
      issuers: [login]
      audiences: [svc-%d]
`, i, i, i, i)
	}
	b.WriteString(`  - name: reports-api
    match:
      hosts: [api.example.com]
      path_prefixes: [/reports/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      scopes: [reports]
    require:
      - 'request.method == "GET" || "reports:write" in scopes'
    headers:
      x-client-id: client_id
      x-is-agent: 'claims.?client_type.orValue("") == "ai-agent"'
default_action: deny
`)
	return b.String()
}

func benchLoad(b *testing.B, yaml string) *policy.Snapshot {
	b.Helper()
	file := filepath.Join(b.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { plane.Close() })
	snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
	if err != nil {
		b.Fatal(err)
	}
	return snap
}

// BenchmarkPolicySelect is rule selection: the first rule, the 20th (every
// match tested), and a rule named by Envoy's context_extensions.
func BenchmarkPolicySelect(b *testing.B) {
	snap := benchLoad(b, benchRules())
	cases := []struct {
		name, rule string
		req        policy.Request
		want       string
	}{
		{"first_of_20", "", policy.Request{Method: "GET", Host: "svc-0.example.com", Path: "/v0/items"}, "service-0"},
		{"last_of_20", "", policy.Request{Method: "GET", Host: "api.example.com", Path: "/reports/2024"}, "reports-api"},
		{"by_name", "reports-api", policy.Request{Method: "GET", Host: "api.example.com", Path: "/reports/2024"}, "reports-api"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := snap.Select(c.rule, &c.req)
				if err != nil || r == nil || r.Name != c.want {
					b.Fatalf("Select = %v, %v", r, err)
				}
			}
		})
	}
}

// BenchmarkPolicyEval is the CEL of the API rule for an authenticated
// request: its require expression, its two headers, and all three together
// as a Check runs them (with a fresh Vars, as each Check has).
func BenchmarkPolicyEval(b *testing.B) {
	snap := benchLoad(b, benchRules())
	rule := snap.Rules[len(snap.Rules)-1]
	req := &policy.Request{Method: "GET", Host: "api.example.com", Path: "/reports/2024", Headers: map[string]string{
		":authority": "api.example.com", "accept": "application/json", "user-agent": "bench",
	}}
	claims := map[string]any{
		"iss": "https://login.example.com", "sub": "user-1", "aud": "api.example.com",
		"client_id": "reports-client", "scope": "openid reports", "exp": int64(1_900_000_000),
		"client_type": "ai-agent",
	}
	vars := func() *policy.Vars {
		return &policy.Vars{Claims: claims, ClientID: "reports-client", Scopes: []string{"openid", "reports"},
			Issuer: "login", Credential: "bearer", Request: req}
	}
	ctx := context.Background()
	b.Run("require", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := rule.Require[0].True(ctx, vars()); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	for _, h := range rule.Headers {
		b.Run("header_"+h.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := h.Value(ctx, vars()); !ok {
					b.Fatal("no value")
				}
			}
		})
	}
	b.Run("rule", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v := vars()
			for _, e := range rule.Require {
				if ok, _ := e.True(ctx, v); !ok {
					b.Fatal("require does not hold")
				}
			}
			for _, h := range rule.Headers {
				h.Value(ctx, v)
			}
		}
	})
}

// BenchmarkIssuersMemory loads a policy of 10,000 issuers with two keys
// each (static `jwks`), spread over 20 files as a large deployment would
// keep it (one file has a bound on its YAML nodes), and reports the heap
// the compiled snapshot and the key plane keep per issuer.
func BenchmarkIssuersMemory(b *testing.B) {
	const issuers, files = 10_000, 20
	dir := b.TempDir()
	var docs [files]strings.Builder
	for f := range docs {
		docs[f].WriteString("version: v1\nissuers:\n")
	}
	for i := range issuers {
		ks, err := mint.NewKeys(fmt.Sprintf("iss%d", i), "ES256")
		if err != nil {
			b.Fatal(err)
		}
		ks2, err := mint.NewKeys(fmt.Sprintf("iss%d-next", i), "ES256")
		if err != nil {
			b.Fatal(err)
		}
		set, _ := json.Marshal(map[string]any{"keys": []any{ks.ByAlg["ES256"].JWK(), ks2.ByAlg["ES256"].JWK()}})
		fmt.Fprintf(&docs[i%files], "  - name: partner-%d\n    issuer: https://partner-%d.example.com\n    algorithms: [ES256]\n    jwks: %s\n", i, i, set)
	}
	docs[0].WriteString(`rules:
  - name: token-endpoint
    match:
      paths: [/oauth/token]
    client_assertion:
      issuers: [partner-0]
      audiences: [https://login.example.com/oauth/token]
default_action: deny
`)
	for f := range docs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("issuers-%02d.yaml", f)), []byte(docs[f].String()), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	var perIssuer float64
	for b.Loop() {
		before := heapInUse()
		plane, err := keys.NewPlane(keys.Config{})
		if err != nil {
			b.Fatal(err)
		}
		snap, err := policy.Load([]string{dir}, policy.Options{Keys: plane})
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Issuers) != issuers {
			b.Fatalf("%d issuers, want %d", len(snap.Issuers), issuers)
		}
		perIssuer = float64(heapInUse()-before) / issuers
		runtime.KeepAlive(snap)
		plane.Close()
	}
	b.ReportMetric(perIssuer, "B/issuer")
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
