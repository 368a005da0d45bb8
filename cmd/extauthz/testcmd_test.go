package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
		{"missing_as", head + "tests:\n  - name: x\n    token: {key: acme, claims: {}}\n" + request, "token.as: want client_assertion, bearer or none"},
		{"bad_time", head + "tests:\n  - name: x\n    token: {as: bearer, key: acme, claims: {exp: soon}}\n" + request, `claims.exp: "soon" is not now`},
		{"key_file", "policy: " + ex + "\nkeys: {k: nowhere.jwk}\ntests:\n  - name: x\n" + request, "nowhere.jwk"},
		{"public_key", "policy: " + ex + "\nkeys: {k: " + ex + "/keys/login.jwks.json}\ntests:\n  - name: x\n" + request, "login.jwks.json"},
		{"policy_error", "policy: " + emptyDir + "\ntests:\n  - name: x\n" + request, "no *.yaml or *.yml files"},
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

func TestRelativeTime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"+2m":                  now.Add(2 * time.Minute),
		"-1h":                  now.Add(-time.Hour),
		"now+30s":              now.Add(30 * time.Second),
		"now-1h30m":            now.Add(-90 * time.Minute),
		"2030-05-06T07:08:09Z": time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC),
	} {
		got, err := relativeTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("relativeTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "+2", "now+", "2m", "tomorrow"} {
		if _, err := relativeTime(in, now); err == nil {
			t.Errorf("relativeTime(%q): no error", in)
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
