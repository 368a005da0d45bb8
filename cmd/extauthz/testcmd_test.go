package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
)

// runCLI runs the extauthz command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

var summary = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed\n\z`)

// counts reads the final "N passed, M failed" line, which CI relies on.
func counts(t *testing.T, stdout string) (passed, failed int) {
	t.Helper()
	m := summary.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("output does not end with \"N passed, M failed\":\n%s", stdout)
	}
	passed, _ = strconv.Atoi(m[1])
	failed, _ = strconv.Atoi(m[2])
	return passed, failed
}

func TestExamplesValidate(t *testing.T) {
	for _, dir := range []string{"../../examples/policies", "../../examples/default-allow"} {
		if code, out, errOut := runCLI(t, "validate", dir); code != 0 {
			t.Errorf("extauthz validate %s: exit %d\n%s%s", dir, code, out, errOut)
		}
	}
}

func TestExamplesPass(t *testing.T) {
	for _, dir := range []string{"../../examples/policies/tests", "../../examples"} {
		code, out, errOut := runCLI(t, "test", dir)
		if code != 0 {
			t.Fatalf("extauthz test %s: exit %d\n%s%s", dir, code, out, errOut)
		}
		if passed, failed := counts(t, out); passed == 0 || failed != 0 {
			t.Errorf("extauthz test %s: %d passed, %d failed", dir, passed, failed)
		}
	}
}

// writeFile writes a test fixture into dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func examplesDir(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("../../examples/policies")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestFailuresAreReported(t *testing.T) {
	ex := examplesDir(t)
	file := writeFile(t, t.TempDir(), "broken_test.yaml", `
policy: `+ex+`
keys: {acme: `+ex+`/keys/partner-acme.private.jwk.json}
now: 2026-01-01T00:00:00Z
tests:
  - name: passes
    request: {host: api.example.com, path: /healthz}
    expect: {decision: allow, reason: public_route}
  - name: expects the wrong decision
    request: {host: login.example.com, path: /oauth/v2/oauth-token, form: {grant_type: client_credentials}}
    expect: {decision: allow, status: 401, headers: {x-client-id: partner-api-client}}
  - name: expects an extra header
    request: {host: login.example.com, path: /oauth/v2/oauth-token}
    token:
      as: client_assertion
      key: acme
      claims: {iss: partner-api-client, sub: partner-api-client, aud: https://login.example.com/oauth/v2/oauth-token, exp: +1m, jti: random}
    expect: {decision: allow, headers: {x-client-id: partner-api-client}}
`)
	code, out, _ := runCLI(t, "test", file)
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, out)
	}
	if passed, failed := counts(t, out); passed != 1 || failed != 2 {
		t.Errorf("%d passed, %d failed; want 1 and 2\n%s", passed, failed, out)
	}
	for _, want := range []string{
		"PASS " + file + ": passes\n",
		"FAIL " + file + `: expects the wrong decision: decision: want "allow", got "deny"; header x-client-id`,
		`header x-client-id: want "partner-api-client", got ""` + "\n",
		"FAIL credential: the rule requires a client assertion",
		`FAIL ` + file + `: expects an extra header: header x-is-agent: not expected, got "false"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "status:") {
		t.Errorf("a matching status is reported as a difference:\n%s", out)
	}
}

func TestRunFilter(t *testing.T) {
	code, out, errOut := runCLI(t, "test", "-run", "replay", "../../examples/policies/tests/token_endpoint_test.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if passed, _ := counts(t, out); passed == 0 || strings.Contains(out, "self-signed") {
		t.Errorf("-run replay ran the wrong tests:\n%s", out)
	}
}

func TestFileErrors(t *testing.T) {
	ex := examplesDir(t)
	dir := t.TempDir()
	emptyDir := t.TempDir()
	head := "policy: " + ex + "\nkeys: {acme: " + ex + "/keys/partner-acme.private.jwk.json}\n"
	request := "    request: {host: api.example.com, path: /healthz}\n    expect: {decision: allow}\n"
	cases := []struct {
		name, content, want string
	}{
		{"unknown_field", head + "tests:\n  - name: x\n    reqest: {}\n    expect: {decision: allow}\n", "field reqest not found"},
		{"no_policy", "tests:\n  - name: x\n" + request, "policy: required"},
		{"no_tests", head, "tests: at least one test"},
		{"no_name", head + "tests:\n  -\n" + request, "tests[0].name: required"},
		{"bad_decision", head + "tests:\n  - name: x\n    expect: {decision: maybe}\n", "expect.decision: must be allow or deny"},
		{"unknown_key", head + "tests:\n  - name: x\n    token: {as: bearer, key: nope, claims: {}}\n" + request, `no key named "nope"`},
		{"missing_as", head + "tests:\n  - name: x\n    token: {key: acme, claims: {}}\n" + request, "token.as: want client_assertion, bearer, dpop or none"},
		{"bad_time", head + "tests:\n  - name: x\n    token: {as: bearer, key: acme, claims: {exp: soon}}\n" + request, `claims.exp: "soon" is not now`},
		{"key_file", "policy: " + ex + "\nkeys: {k: nowhere.jwk}\ntests:\n  - name: x\n" + request, "nowhere.jwk"},
		{"public_key", "policy: " + ex + "\nkeys: {k: " + ex + "/keys/login.jwks.json}\ntests:\n  - name: x\n" + request, "login.jwks.json"},
		{"policy_error", "policy: " + emptyDir + "\ntests:\n  - name: x\n" + request, "no *.yaml or *.yml files"},
		{"dpop_unknown_key", head + "tests:\n  - name: x\n    dpop: {key: nope}\n" + request, `dpop: key: no key named "nope"`},
		{"dpop_secret", "policy: " + ex + "\nkeys: {jobs: " + ex + "/keys/internal-jobs.hmac}\ntests:\n  - name: x\n    dpop: {key: jobs}\n" + request, `key "jobs" is a shared secret`},
		{"dpop_bad_time", head + "tests:\n  - name: x\n    dpop: {key: acme, claims: {iat: soon}}\n" + request, `dpop: claims.iat: "soon" is not now`},
		{"dpop_authorization", head + "tests:\n  - name: x\n    request: {headers: {authorization: x}}\n    token: {as: dpop, key: acme, claims: {}}\n    expect: {decision: allow}\n", "token.as dpop sets authorization"},
		{"peer_certificate", head + "tests:\n  - name: x\n    request: {peer_certificate: nowhere.pem}\n    expect: {decision: allow}\n", "request.peer_certificate: open"},
		{"bad_function", head + "tests:\n  - name: x\n    token: {as: bearer, key: acme, claims: {cnf: {jkt: jkt(nope)}}}\n" + request, `claims.cnf: jkt: jkt(nope): no key named "nope"`},
		{"expect_jwk", head + "tests:\n  - name: x\n    request: {host: api.example.com, path: /healthz}\n    expect: {decision: allow, headers: {x: jwk(acme)}}\n", "expect.headers.x: jwk(acme) is not a header value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, dir, tc.name+"_test.yaml", tc.content)
			code, out, errOut := runCLI(t, "test", file)
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, "ERROR "+file+": ") || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
			counts(t, out)
		})
	}
	for _, args := range [][]string{{"test"}, {"test", filepath.Join(dir, "missing_test.yaml")}, {"test", emptyDir}, {"test", "-run", "(", dir}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("extauthz %q: exit %d, want 2", args, code)
		}
	}
}

// docBlock is one fenced ```yaml block of docs/policy.md.
type docBlock struct {
	line int
	info string // the words after "yaml": "", "invalid" or "test"
	text string
}

func docBlocks(t *testing.T, name string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks []docBlock
		cur    *docBlock
		body   strings.Builder
	)
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```yaml"):
			cur = &docBlock{line: i + 1, info: strings.TrimSpace(strings.TrimPrefix(line, "```yaml"))}
			body.Reset()
		case cur != nil && strings.HasPrefix(line, "```"):
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated code block", name, cur.line)
	}
	return blocks
}

// TestDocExamples loads every ```yaml block of docs/policy.md: a plain block
// must load as a policy file (relative key paths find examples/policies/keys),
// a "yaml invalid" block must fail with the error its "# error:" comment
// gives, and a "yaml test" block is a test file run against
// examples/policies.
func TestDocExamples(t *testing.T) {
	ex := examplesDir(t)
	blocks := docBlocks(t, "../../docs/policy.md")
	if len(blocks) < 8 {
		t.Fatalf("found %d yaml blocks in docs/policy.md; the extraction is broken", len(blocks))
	}
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Close()
	// The policy directory: links to the example policy files and keys, so
	// test blocks run against them and policy blocks find the keys.
	root := t.TempDir()
	entries, err := os.ReadDir(ex)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".yaml" || e.Name() == "keys" {
			if err := os.Symlink(filepath.Join(ex, e.Name()), filepath.Join(root, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	docs := filepath.Join(root, "docs")
	if err := os.MkdirAll(filepath.Join(root, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(ex, "keys"), filepath.Join(docs, "keys")); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		where := "docs/policy.md:" + strconv.Itoa(b.line)
		switch b.info {
		case "", "invalid":
			file := writeFile(t, docs, "block"+strconv.Itoa(b.line)+".yaml", b.text)
			_, err := policy.Load([]string{file}, policy.Options{Keys: plane})
			if b.info == "" {
				if err != nil {
					t.Errorf("%s: does not load:\n%v", where, err)
				}
				continue
			}
			want := ""
			for _, line := range strings.Split(b.text, "\n") {
				if w, ok := strings.CutPrefix(strings.TrimSpace(line), "# error: "); ok {
					want = w
				}
			}
			var le *policy.LoadError
			switch {
			case want == "":
				t.Errorf("%s: an invalid block needs a \"# error: ...\" comment", where)
			case !errors.As(err, &le):
				t.Errorf("%s: loads, but is meant to fail with %q (err %v)", where, want, err)
			case !strings.Contains(err.Error(), want):
				t.Errorf("%s: fails with\n%v\nwant %q", where, err, want)
			}
		case "test":
			file := writeFile(t, filepath.Join(root, "tests"), "block"+strconv.Itoa(b.line)+"_test.yaml", b.text)
			code, out, errOut := runCLI(t, "test", file)
			if passed, failed := counts(t, out); code != 0 || passed == 0 || failed != 0 {
				t.Errorf("%s: extauthz test: exit %d\n%s%s", where, code, out, errOut)
			}
		default:
			t.Errorf("%s: unknown block kind %q (want ```yaml, ```yaml invalid or ```yaml test)", where, b.info)
		}
	}
}

// TestSenderConstrainedFailures checks that the new expectations fail the
// runner when the answer differs: a nonce, a thumbprint, a header an allow
// adds to the response, and a DPoP reason.
func TestSenderConstrainedFailures(t *testing.T) {
	ex := examplesDir(t)
	file := writeFile(t, t.TempDir(), "dpop_test.yaml", `
policy: `+ex+`
keys: {login: `+ex+`/keys/login.private.jwk.json, client: `+ex+`/keys/dpop-client.private.jwk.json, other: `+ex+`/keys/dpop-other.private.jwk.json}
now: 2026-01-01T00:00:00Z
tests:
  - name: passes
    request: &transfer {method: POST, host: payments.example.com, path: /transfers/, body: "{}", headers: {content-type: application/json}}
    token: &tok
      as: dpop
      key: login
      claims: {iss: https://login.example.com, aud: payments.example.com, scope: transfers, exp: +5m, cnf: {jkt: jkt(client)}}
    dpop: {key: client, claims: {nonce: "{{nonce}}"}}
    expect: {decision: allow, headers: {x-dpop-jkt: jkt(client)}, response_headers: {dpop-nonce: "{{nonce}}"}}
  - name: wrong thumbprint and nonce
    request: *transfer
    token: *tok
    dpop: {key: client, claims: {nonce: "{{nonce}}"}}
    expect: {decision: allow, headers: {x-dpop-jkt: jkt(other)}, response_headers: {dpop-nonce: stale}}
  - name: wrong reason
    request: *transfer
    token: *tok
    dpop: {key: client, claims: {nonce: "{{nonce}}", htm: GET}}
    expect: {decision: deny, reason: dpop_htu_mismatch}
`)
	code, out, _ := runCLI(t, "test", file)
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, out)
	}
	if passed, failed := counts(t, out); passed != 1 || failed != 2 {
		t.Errorf("%d passed, %d failed; want 1 and 2\n%s", passed, failed, out)
	}
	for _, want := range []string{
		`: wrong thumbprint and nonce: response header dpop-nonce: want "stale", got "`,
		`header x-dpop-jkt: want "kCWp_1-tLyyyaezavYktyJfTx_Kyjz4mHxPf6c0FNAE", got "qfm6HQ4MhxqxMZleBzo4PCs81Npu4-p1bOeNylyJcKA"`,
		`: wrong reason: reason: want "dpop_htu_mismatch", got "dpop_htm_mismatch"`,
		"FAIL DPoP proof: dpop: htm does not match the request",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// remoteFixture is a policy whose issuers all fetch their keys: a jwks_uri
// at a host that does not exist, and an OIDC discovery issuer and a SPIFFE
// bundle endpoint at addr, a listener that counts who connects.
func remoteFixture(t *testing.T, addr string) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "policy.yaml", `
version: v1
issuers:
  - name: partner-remote
    issuer: remote-partner-client
    jwks_uri: https://keys.unreachable.invalid/.well-known/jwks.json
    algorithms: [PS256]
  - name: corporate-idp
    issuer: https://`+addr+`
    discovery: true
  - name: mesh-agent
    spiffe:
      trust_domain: mesh-agent.example
      bundle_endpoint: {url: "https://`+addr+`/bundle"}
rules:
  - name: token-endpoint
    match: {hosts: [login.example.com]}
    client_assertion: {issuers: [partner-remote], audiences: [https://login.example.com/token]}
  - name: api
    match: {hosts: [api.example.com]}
    bearer: {issuers: [corporate-idp, mesh-agent], audiences: [api.example.com]}
`)
}

// connCounter is a listener that records every connection and answers none.
func connCounter(t *testing.T) (addr string, conns *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), conns
}

// TestIssuerKeys tests a production policy whose issuers all fetch their
// keys (jwks_uri, discovery, spiffe) with no network: issuer_keys serves
// the public halves of the file's keys instead, and nothing is fetched.
func TestIssuerKeys(t *testing.T) {
	ex := examplesDir(t)
	addr, conns := connCounter(t)
	policy := remoteFixture(t, addr)
	keys := "keys: {acme: " + ex + "/keys/partner-acme.private.jwk.json, login: " + ex + "/keys/login.private.jwk.json, mesh: " + ex + "/keys/mesh.private.jwk.json, forger: " + ex + "/keys/forger.private.jwk.json, legacy: " + ex + "/keys/legacy.private.pem}\n"
	file := writeFile(t, t.TempDir(), "remote_test.yaml", "policy: "+policy+"\n"+keys+`
issuer_keys:
  partner-remote: acme
  corporate-idp: [legacy, login]
  mesh-agent: [mesh]
now: 2026-01-01T00:00:00Z
tests:
  - name: a client assertion of a jwks_uri issuer
    request: {host: login.example.com, path: /token, form: {grant_type: client_credentials}}
    token:
      as: client_assertion
      key: acme
      claims: {iss: remote-partner-client, sub: remote-partner-client, aud: https://login.example.com/token, exp: +1m, jti: random}
    expect: {decision: allow, issuer: partner-remote, client_id: remote-partner-client}
  - name: an access token of a discovery issuer, by either of its keys
    request: {host: api.example.com}
    token: {as: bearer, key: login, claims: {iss: "https://`+addr+`", aud: api.example.com, exp: +1m}}
    expect: {decision: allow, issuer: corporate-idp}
  - name: the PEM key without a kid verifies too
    request: {host: api.example.com}
    token: {as: bearer, key: legacy, claims: {iss: "https://`+addr+`", aud: api.example.com, exp: +1m}}
    expect: {decision: allow, issuer: corporate-idp}
  - name: a JWT-SVID of a SPIFFE issuer
    request: {host: api.example.com}
    token: {as: bearer, key: mesh, claims: {sub: spiffe://mesh-agent.example/ns/batch/sa/reporter, aud: api.example.com, exp: +1m}}
    expect: {decision: allow, issuer: mesh-agent, spiffe_id: spiffe://mesh-agent.example/ns/batch/sa/reporter}
  - name: a key the issuer was not given does not verify
    request: {host: login.example.com, path: /token, form: {grant_type: client_credentials}}
    token:
      as: client_assertion
      key: forger
      alg: PS256
      claims: {iss: remote-partner-client, sub: remote-partner-client, aud: https://login.example.com/token, exp: +1m, jti: random}
    expect: {decision: deny, status: 401, reason: signature_invalid}
  - name: the policy's algorithms still hold (PS256 only)
    request: {host: login.example.com, path: /token, form: {grant_type: client_credentials}}
    token:
      as: client_assertion
      key: acme
      alg: RS256
      claims: {iss: remote-partner-client, sub: remote-partner-client, aud: https://login.example.com/token, exp: +1m, jti: random}
    expect: {decision: deny, status: 401, reason: algorithm_not_allowed}
`)
	code, out, errOut := runCLI(t, "test", file)
	if passed, failed := counts(t, out); code != 0 || passed != 6 || failed != 0 {
		t.Errorf("exit %d, %d passed, %d failed; want 0, 6, 0\n%s%s", code, passed, failed, out, errOut)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to the discovery and bundle endpoint address: keys were fetched", n)
	}

	// Without issuer_keys the same tokens get 503: nothing is fetched.
	plain := writeFile(t, t.TempDir(), "plain_test.yaml", "policy: "+policy+"\n"+keys+`
now: 2026-01-01T00:00:00Z
tests:
  - name: a discovery issuer without issuer_keys
    request: {host: api.example.com}
    token: {as: bearer, key: login, claims: {iss: "https://`+addr+`", aud: api.example.com, exp: +1m}}
    expect: {decision: deny, status: 503, reason: keys_unavailable, issuer: corporate-idp}
`)
	if code, out, errOut := runCLI(t, "test", plain); code != 0 {
		t.Errorf("without issuer_keys: exit %d\n%s%s", code, out, errOut)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections without issuer_keys", n)
	}
}

func TestIssuerKeysErrors(t *testing.T) {
	ex := examplesDir(t)
	addr, _ := connCounter(t)
	policy := remoteFixture(t, addr)
	dir := t.TempDir()
	head := "policy: " + policy + "\nkeys: {acme: " + ex + "/keys/partner-acme.private.jwk.json, jobs: " + ex + "/keys/internal-jobs.hmac}\n"
	tests := "tests:\n  - name: x\n    request: {host: api.example.com}\n    expect: {decision: deny}\n"
	for name, tc := range map[string]struct{ issuerKeys, want string }{
		"unknown_issuer": {"{nope: acme}", `issuer_keys["nope"]: no issuer named "nope" in the policy (it has corporate-idp, mesh-agent, partner-remote)`},
		"unknown_key":    {"{partner-remote: nope}", `issuer_keys["partner-remote"]: no key named "nope" in the file's keys`},
		"empty":          {"{partner-remote: []}", `issuer_keys["partner-remote"]: name at least one key of keys`},
		"mixed":          {"{partner-remote: [acme, jobs]}", `key "jobs" is a shared secret: an issuer verifies with one secret or with public keys, not both`},
	} {
		t.Run(name, func(t *testing.T) {
			file := writeFile(t, dir, name+"_test.yaml", head+"issuer_keys: "+tc.issuerKeys+"\n"+tests)
			code, out, errOut := runCLI(t, "test", file)
			if code != 2 || !strings.Contains(errOut, "ERROR "+file+": ") || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q\n%s", code, errOut, tc.want, out)
			}
		})
	}
}

// TestNowFlag pins the clock of every file with --now, over their now:.
func TestNowFlag(t *testing.T) {
	ex := examplesDir(t)
	dir := t.TempDir()
	test := "keys: {login: " + ex + "/keys/login.private.jwk.json}\ntests:\n" + `
  - name: a token valid in the first hour of 2026
    request: {host: api.example.com, path: /reports/2026}
    token:
      as: bearer
      key: login
      header: {typ: at+jwt}
      claims: {iss: https://login.example.com, sub: alice, client_id: reports-ui, aud: api.example.com, scope: reports, jti: random, iat: 2026-01-01T00:00:00Z, exp: 2026-01-01T01:00:00Z}
    expect: {decision: allow}
`
	pinned := writeFile(t, dir, "pinned_test.yaml", "policy: "+ex+"\nnow: 2026-01-01T00:30:00Z\n"+test)
	unpinned := writeFile(t, dir, "unpinned_test.yaml", "policy: "+ex+"\n"+test)

	code, out, _ := runCLI(t, "test", dir)
	if passed, failed := counts(t, out); code != 1 || passed != 1 || failed != 1 || !strings.Contains(out, "PASS "+pinned) {
		t.Errorf("without --now: exit %d, %d passed, %d failed; want the file with now: alone to pass\n%s", code, passed, failed, out)
	}
	code, out, _ = runCLI(t, "test", "--now", "2026-01-01T00:10:00Z", dir)
	if passed, failed := counts(t, out); code != 0 || passed != 2 || failed != 0 {
		t.Errorf("--now in the hour: exit %d, %d passed, %d failed; want both to pass\n%s", code, passed, failed, out)
	}
	code, out, _ = runCLI(t, "test", "--now", "2026-01-01T02:00:00Z", dir)
	if passed, failed := counts(t, out); code != 1 || passed != 0 || failed != 2 || !strings.Contains(out, `FAIL `+unpinned+`: a token valid in the first hour of 2026: decision: want "allow", got "deny"`) {
		t.Errorf("--now after the hour overrides now:: exit %d, %d passed, %d failed; want both to fail\n%s", code, passed, failed, out)
	}
	for _, bad := range []string{"tomorrow", "2026-01-01"} {
		if code, _, errOut := runCLI(t, "test", "--now", bad, dir); code != 2 || !strings.Contains(errOut, "--now") {
			t.Errorf("--now %s: exit %d, %q; want 2", bad, code, errOut)
		}
	}
}
