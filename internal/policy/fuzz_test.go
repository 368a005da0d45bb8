package policy_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
)

// fuzzPolicy is a policy using every part of the schema.
const fuzzPolicy = `version: v1
issuers:
  - name: partner
    issuer: partner-api-client
    jwks_uri: https://keys.acme.example/.well-known/jwks
    algorithms: [PS256]
    clock_skew: 10s
  - name: spire
    issuer: https://oidc-discovery.example.org
    jwks_uri: https://spire-oidc.spire-server/keys
    spiffe_trust_domain: example.org
    client_ids:
      spiffe://example.org/ns/applications/sa/workload-client: jwt_assertion_client
  - name: inline
    issuer: inline
    jwks: {"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "use": "sig", "kid": "k"}]}
  - name: login
    issuer: https://login.example.com
    discovery: true
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com, "*.example.com"]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner, spire, inline]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
      max_lifetime: 600s
      replay_protection: true
    headers:
      x-client-id: client_id
      x-spiffe-id: spiffe_id
      x-is-agent: 'claims.?client_type.orValue("") == "ai-agent"'
  - name: reports-api
    mode: audit
    match:
      path_prefixes: [/reports/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      scopes: [reports]
    require:
      - 'request.method == "GET" || "reports:write" in scopes'
      - 'spiffe_id == "" || spiffe_id.matches_pattern("spiffe://example.org/ns/*/sa/**")'
    headers:
      X-Client-Id: client_id
strip_headers: [x-internal-user]
realm: api
default_action: deny
`

// fuzzSeeds are valid policies, the shapes the loader must refuse, and YAML
// features an attacker with write access to a policy would reach for.
func fuzzSeeds() []string {
	seeds := []string{
		fuzzPolicy,
		"version: v1\n",
		"",
		"\ufeffversion: v1\n",
		"version: v1\n---\nversion: v1\n",
		"version: [v1\n",
		"version: v1\nversion: v1\n",
		"version: !!binary djE=\n",
		"version: !!str v1\nrealm: \"a\\\"b\"\n",
		"version: v1\nrealm: \"x\\r\\nSet-Cookie: a\"\n",
		"version: v1\nstrip_headers: [Host, 'x\\r\\ny', x_y, X-Y]\n",
		"version: v1\nrules:\n  - &r {name: a}\n  - *r\n",
		"version: v1\nissuers:\n  - &i {name: a, issuer: x, jwks_uri: https://a/j}\nrules:\n  - name: r\n    bearer: {issuers: [a], audiences: [x]}\n    headers: {<<: {x-a: client_id}}\n",
		"version: v1\nissuers:\n  - name: a\n    issuer: a\n    jwks:\n      l0: &a0 [x, x, x, x]\n      l1: &a1 [*a0, *a0, *a0, *a0]\n      l2: [*a1, *a1, *a1, *a1]\n",
		"version: v1\nissuers:\n  - {name: a, issuer: x, hmac_secret_file: /dev/null, algorithms: [none, HS256, RS256]}\n",
		"version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: 'file:///etc/passwd', clock_skew: -1s}\n",
		"version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, clock_skew: 9999999999999h}\n",
		"version: v1\nrules:\n  - {name: r, client_assertion: {issuers: [], audiences: []}, mode: 0x10}\n",
		"version: v1\nrules:\n  - name: r\n    require: ['claims.l.all(a, claims.l.all(b, claims.l.all(c, true)))']\n",
		"version: v1\nrules:\n  - name: r\n    headers: {x-a: '\"a\" * 99999999999', x-b: 'spiffe_id.matches_pattern(\"spiffe://x/**/y\")'}\n",
		"version: v1\nrules:\n  - name: r\n    match: {hosts: ['*.*', '*', 'a:1'], paths: ['', '?'], methods: [get, 'G T']}\n",
		"version: v1\ndefault_action: allow\nrealm: " + strings.Repeat("x", 1000) + "\n",
		"version: v1\nrules: [" + strings.Repeat("{name: r},", 3) + "]\n",
		"{\"version\": \"v1\", \"rules\": [{\"name\": \"r\", \"headers\": {\"x\": \"client_id\"}}]}\n",
		"version: v1\n" + strings.Repeat("  ", 100) + "x: 1\n",
		"version: v1\nrules:\n- name: r\n  headers:\n    " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + ": x\n",
	}
	for _, doc := range recursiveAliases {
		seeds = append(seeds, doc)
	}
	// The examples shipped with extauthz, as far as they exist.
	for _, pattern := range []string{"../../examples/*/*.yaml", "../../examples/*/*.yml", "../../test/e2e/testdata/*.yaml"} {
		names, _ := filepath.Glob(pattern)
		for _, name := range names {
			if b, err := os.ReadFile(name); err == nil {
				seeds = append(seeds, string(b))
			}
		}
	}
	return seeds
}

// FuzzLoad loads arbitrary bytes as a policy file. Load must never panic;
// it fails with a *LoadError (or a path error reading the file), and what it
// accepts is a consistent snapshot. Key sources are not built (no key
// plane), so a fuzzed path never reaches the filesystem beyond the policy
// file itself.
func FuzzLoad(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		path := filepath.Join(t.TempDir(), "p.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		snap, err := policy.Load([]string{path}, policy.Options{})
		if err != nil {
			checkLoadError(t, err, path)
			if snap != nil {
				t.Fatal("a snapshot with an error")
			}
			return
		}
		checkSnapshot(t, snap)
	})
}

func checkLoadError(t *testing.T, err error, path string) {
	t.Helper()
	var (
		le *policy.LoadError
		pe *fs.PathError
	)
	switch {
	case errors.As(err, &le):
		if len(le.Errors) == 0 {
			t.Fatal("a LoadError without errors")
		}
		for _, fe := range le.Errors {
			if fe.File != path && fe.File != "" {
				t.Fatalf("error names file %q, not %q: %v", fe.File, path, fe)
			}
			if fe.Msg == "" {
				t.Fatalf("error without a message: %#v", fe)
			}
		}
	case errors.As(err, &pe):
	default:
		t.Fatalf("error of type %T, want *LoadError or a path error: %v", err, err)
	}
}

// checkSnapshot checks what every loaded policy must satisfy.
func checkSnapshot(t *testing.T, snap *policy.Snapshot) {
	t.Helper()
	if snap.Realm == "" || strings.ContainsAny(snap.Realm, "\"\\\r\n\x00") {
		t.Fatalf("realm %q", snap.Realm)
	}
	if !slices.IsSorted(snap.Managed) || len(slices.Compact(slices.Clone(snap.Managed))) != len(snap.Managed) {
		t.Fatalf("managed headers not sorted and unique: %q", snap.Managed)
	}
	managed := map[string]bool{}
	for _, m := range snap.Managed {
		managed[m] = true
		if m == "" || m != strings.ToLower(m) || strings.ContainsAny(m, " \t\r\n\x00:") {
			t.Fatalf("managed header %q", m)
		}
		switch m {
		case "host", "content-length", "transfer-encoding", "connection":
			t.Fatalf("reserved header %q is managed", m)
		}
	}
	for _, m := range snap.Managed {
		if alt := strings.ReplaceAll(m, "-", "_"); !managed[alt] {
			t.Fatalf("managed header %q without its _ spelling", m)
		}
	}
	names := map[string]bool{}
	for _, r := range snap.Rules {
		if r.Name == "" || names[r.Name] {
			t.Fatalf("rule name %q empty or repeated", r.Name)
		}
		names[r.Name] = true
		for _, h := range r.Headers {
			if !managed[h.Name] {
				t.Fatalf("rule %s sets %q, which is not managed", r.Name, h.Name)
			}
		}
		for _, cred := range []*policy.Credential{credOf(r.ClientAssertion), credOfBearer(r.Bearer)} {
			if cred == nil {
				continue
			}
			if len(cred.Issuers) == 0 || len(cred.Audiences) == 0 {
				t.Fatalf("rule %s has a credential without issuers or audiences", r.Name)
			}
			for _, is := range cred.Issuers {
				if slices.Contains(is.Algorithms, "none") || len(is.Algorithms) == 0 {
					t.Fatalf("issuer %s algorithms %v", is.Name, is.Algorithms)
				}
			}
		}
		if r.ClientAssertion != nil && r.ClientAssertion.MaxLifetime <= 0 {
			t.Fatalf("rule %s max_lifetime %v", r.Name, r.ClientAssertion.MaxLifetime)
		}
	}
	for name, is := range snap.Issuers {
		if name != is.Name || (is.Iss == "" && !is.IssuesSVIDs()) || is.ClockSkew < 0 {
			t.Fatalf("issuer %q compiled as %+v", name, is)
		}
	}
}

func credOf(ca *policy.ClientAssertion) *policy.Credential {
	if ca == nil {
		return nil
	}
	return &ca.Credential
}

func credOfBearer(b *policy.Bearer) *policy.Credential {
	if b == nil {
		return nil
	}
	return &b.Credential
}

// TestLoadAliasExpansionBounded: YAML aliases let a file of a few hundred
// bytes name an exponential number of nodes ("billion laughs"). The file
// below, 566 bytes, names 111,110; each further line would multiply that by
// ten. Before the decoder bounded the nodes it visits, it loaded this in
// 0.7s and 32 MB, and three more lines exhausted the memory of `extauthz
// validate`, or of a serving extauthz on a policy reload. Load must refuse
// it, cheaply.
func TestLoadAliasExpansionBounded(t *testing.T) {
	const bomb = `version: v1
issuers:
  - name: a
    issuer: a
    jwks:
      keys:
        - kty: EC
          crv: P-256
          x: f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU
          y: x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0
          use: sig
          l0: &a0 [x, x, x, x, x, x, x, x, x, x]
          l1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
          l2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
          l3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
          l4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
`
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Close()
	path := filepath.Join(t.TempDir(), "bomb.yaml")
	if err := os.WriteFile(path, []byte(bomb), 0o600); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = policy.Load([]string{path}, policy.Options{Keys: plane})
	runtime.ReadMemStats(&after)
	t.Logf("%d bytes of policy: %d bytes allocated", len(bomb), after.TotalAlloc-before.TotalAlloc)
	var le *policy.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load = %v, want a *LoadError refusing the alias expansion", err)
	}
}

// recursiveAliases are policies whose jwks holds a YAML alias to one of
// its own ancestors, which the decoder once followed forever.
var recursiveAliases = map[string]string{
	"sequence": "version: v1\nissuers:\n  - name: a\n    issuer: a\n    jwks:\n      keys: &k [[*k]]\n",
	"mapping":  "version: v1\nissuers:\n  - name: a\n    issuer: a\n    jwks: &j {keys: [*j]}\n",
	"member":   "version: v1\nissuers:\n  - name: a\n    issuer: a\n    jwks:\n      keys: [{kty: EC, x: &x {a: *x}}]\n",
}

// TestLoadRecursiveAlias: a policy of under 100 bytes whose jwks holds a
// recursive alias was a fatal stack overflow — not a panic, so nothing
// recovered it: `extauthz validate` died, and so did a serving extauthz
// reloading it, instead of keeping the old policy as the spec promises.
// Load runs in a child process here so that a regression is reported, not
// suffered. Load must refuse such a file with a *LoadError.
func TestLoadRecursiveAlias(t *testing.T) {
	if path := os.Getenv("EXTAUTHZ_TEST_LOAD_CHILD"); path != "" {
		debug.SetMaxStack(8 << 20) // crash in a moment, not after 1 GB
		_, err := policy.Load([]string{path}, policy.Options{})
		var le *policy.LoadError
		if !errors.As(err, &le) {
			fmt.Printf("Load = %v, want a *LoadError\n", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	for name, doc := range recursiveAliases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestLoadRecursiveAlias$")
			cmd.Env = append(os.Environ(), "EXTAUTHZ_TEST_LOAD_CHILD="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				lines := strings.SplitN(string(out), "\n", 4)
				t.Errorf("Load of a %d-byte policy: %v: %s", len(doc), err, strings.Join(lines[:min(3, len(lines))], " | "))
			}
		})
	}
}

// refMatch is an independent reading of the SPIFFE ID pattern rules: the
// same trust domain; segment by segment, `*` one segment, a final `**`
// one or more, anything else equal.
func refMatch(id, pattern string) bool {
	pid, err := spiffeid.FromString(id)
	if err != nil {
		return false
	}
	td, path, _ := strings.Cut(strings.TrimPrefix(pattern, "spiffe://"), "/")
	if pid.TrustDomain().Name() != td {
		return false
	}
	var isegs, psegs []string
	if p := pid.Path(); p != "" {
		isegs = strings.Split(p[1:], "/")
	}
	if path != "" {
		psegs = strings.Split(path, "/")
	}
	if n := len(psegs); n > 0 && psegs[n-1] == "**" {
		if len(isegs) < n {
			return false
		}
		isegs, psegs = isegs[:n-1], psegs[:n-1]
	} else if len(isegs) != len(psegs) {
		return false
	}
	for i, p := range psegs {
		if p != "*" && p != isegs[i] {
			return false
		}
	}
	return true
}

// FuzzSPIFFEPattern checks MatchSPIFFEPattern (the CEL matches_pattern)
// against an independent reading of its rules: no panic, an error depends
// on the pattern alone, a match implies a valid SPIFFE ID of the pattern's
// trust domain that agrees with the reference segment by segment (never a
// string prefix), and a wildcard-free valid pattern matches itself.
func FuzzSPIFFEPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/prod/*"},
		{"spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/prod/**"},
		{"spiffe://example.org/ns/prod-evil/x", "spiffe://example.org/ns/prod/**"},
		{"spiffe://example.org.evil/ns/prod/x", "spiffe://example.org/ns/prod/*"},
		{"spiffe://example.org/ns/prod//x", "spiffe://example.org/ns/prod/**"},
		{"spiffe://example.org/ns/prod/%2e%2e", "spiffe://example.org/ns/*/*"},
		{"spiffe://EXAMPLE.org/ns/prod/x", "spiffe://example.org/ns/prod/*"},
		{"spiffe://example.org", "spiffe://example.org"},
		{"spiffe://example.org/", "spiffe://example.org/**"},
		{"spiffe://example.org/a/b", "spiffe://example.org/**/b"},
		{"spiffe://example.org/a", "spiffe://example.org/*/**"},
		{"spiffe://example.org/a/../b", "spiffe://example.org/*/*/*"},
		{"spiffe://example.org/a\x00", "spiffe://example.org/*"},
		{"spiffe://ex\u0430mple.org/a", "spiffe://ex\u0430mple.org/*"},
		{"spiffe://example.org:443/a", "spiffe://example.org:443/*"},
		{"", ""},
		{"spiffe://example.org/" + strings.Repeat("a/", 1000) + "a", "spiffe://example.org/" + strings.Repeat("*/", 1000) + "**"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, id, pattern string) {
		ok, err := policy.MatchSPIFFEPattern(id, pattern)
		_, errOther := policy.MatchSPIFFEPattern("spiffe://example.org/a", pattern)
		if (err == nil) != (errOther == nil) {
			t.Fatalf("pattern %q: error %v with one id, %v with another", pattern, err, errOther)
		}
		if err != nil {
			if ok {
				t.Fatal("a match with an error")
			}
			return
		}
		// Accepted patterns have the grammar's shape: no empty segment,
		// no trailing slash.
		rest, ok2 := strings.CutPrefix(pattern, "spiffe://")
		if !ok2 || strings.HasSuffix(rest, "/") || strings.Contains(rest, "//") {
			t.Fatalf("malformed pattern %q accepted", pattern)
		}
		if want := refMatch(id, pattern); ok != want {
			t.Fatalf("MatchSPIFFEPattern(%q, %q) = %v, reference %v", id, pattern, ok, want)
		}
		if ok {
			pid, err := spiffeid.FromString(id)
			if err != nil {
				t.Fatalf("matched %q, not a SPIFFE ID: %v", id, err)
			}
			td, _, _ := strings.Cut(strings.TrimPrefix(pattern, "spiffe://"), "/")
			if pid.TrustDomain().Name() != td {
				t.Fatalf("matched %q across trust domains (%q)", id, pattern)
			}
			// The literal part of the pattern before any wildcard is a
			// prefix of the id at a segment boundary.
			lit := pattern
			if i := strings.Index(lit, "/*"); i >= 0 {
				lit = lit[:i]
			}
			if id != lit && !strings.HasPrefix(id, lit+"/") {
				t.Fatalf("%q matched %q, beyond its literal prefix %q", id, pattern, lit)
			}
		}
		if !strings.Contains(pattern, "*") {
			if _, err := spiffeid.FromString(pattern); err == nil {
				if self, _ := policy.MatchSPIFFEPattern(pattern, pattern); !self {
					t.Fatalf("pattern %q does not match itself", pattern)
				}
			}
		}
	})
}
