package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateErrorFormat: validate prints each error as
// file:line:column: field path: message, with no package prefix, so
// editors and CI annotations can jump to it, and exits 1.
func TestValidateErrorFormat(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "policy.yaml", `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: /jwks
rules:
  - name: api
    bearer:
      issuers: [login]
      audience: [api]
    headers:
      x-is-agent: 'clams.?client_type.orValue("") == "ai-agent"'
`)
	code, stdout, stderr := runCLI(t, "validate", file)
	want := file + `:10:7: rules[0].bearer.audience: unknown field; did you mean "audiences"?` + "\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 and stderr:\n%s", code, stdout, stderr, want)
	}
	// With the field fixed, the file decodes and is compiled: the issuer's
	// error, and the CEL error placed inside the expression, but no false
	// "no issuer named" for the issuer that failed.
	file = writeFile(t, dir, "policy.yaml", strings.Replace(readFile(t, file), "audience:", "audiences:", 1))
	code, _, stderr = runCLI(t, "validate", file)
	want = file + `:5:5: issuers[0].jwks_uri: must be an absolute https:// URL, got "/jwks"
` + file + `:12:20: rules[0].headers["x-is-agent"]: undeclared reference to 'clams'
`
	if code != 1 || stderr != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and stderr:\n%s", code, stderr, want)
	}
}

// TestValidateWarnings: a policy that loads but cannot do what it says
// passes validate (exit 0, ok on stdout) with each warning on stderr,
// prefixed "warning: ".
func TestValidateWarnings(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "10-issuers.yaml", `version: v1
issuers:
  - {name: login, issuer: https://login.example.com, jwks_uri: https://login.example.com/jwks}
  - {name: legacy, issuer: https://legacy.example.com, jwks_uri: https://legacy.example.com/jwks}
default_action: allow
`)
	writeFile(t, dir, "20-rules.yaml", `version: v1
rules:
  - name: health
    match: {paths: [/healthz]}
  - name: api
    match: {path_prefixes: [/api/]}
    bearer: {issuers: [login], audiences: [api]}
    headers:
      x-client-id: client_id
      x-claims: claims
      x-tenant: '""'
  - name: api-again
    match: {path_prefixes: [/api/]}
    bearer: {issuers: [login], audiences: [api]}
`)
	code, stdout, stderr := runCLI(t, "validate", dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	want := strings.Join([]string{
		"warning: " + p("10-issuers.yaml") + `:4:5: issuers[1]: no rule names issuer "legacy", so it verifies no token`,
		"warning: " + p("20-rules.yaml") + `:3:5: rules[0]: rule "health" is a public route with no require or headers, and no later rule matches its requests: default_action allow would allow them just the same; remove it, or give it a credential`,
		"warning: " + p("20-rules.yaml") + `:10:7: rules[1].headers["x-claims"]: never sets the header: its value is of type map(string, dyn), and only strings, bools, numbers and lists or optionals of them are sent`,
		"warning: " + p("20-rules.yaml") + `:11:7: rules[1].headers["x-tenant"]: never sets the header: it reads no variable and is always the empty string`,
		"warning: " + p("20-rules.yaml") + `:12:5: rules[2]: rule "api-again" is never selected by matching: rule "api" comes first and has the same match; only a route whose context_extensions name it (rule: api-again) selects it`,
	}, "\n") + "\n"
	if code != 0 || !strings.HasPrefix(stdout, "ok: 2 files, 2 issuers, 3 rules") || stderr != want {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 0, ok, and stderr:\n%s", code, stdout, stderr, want)
	}
}

// TestCheckIPv6Authority: a match.hosts IPv6 literal matches Envoy's
// :authority [::1]:8443 (brackets kept, port dropped), and only that
// address.
func TestCheckIPv6Authority(t *testing.T) {
	file := writeFile(t, t.TempDir(), "policy.yaml", `version: v1
rules:
  - name: loopback
    match: {hosts: ['[::1]'], paths: [/x]}
  - name: doc
    match: {hosts: ['[2001:DB8::1]'], paths: [/x]}
`)
	for url, want := range map[string]string{
		"https://[::1]:8443/x":         "loopback",
		"https://[::1]/x":              "loopback",
		"https://[2001:db8::1]:8443/x": "doc",
		"https://[::2]:8443/x":         "(none)",
	} {
		code, stdout, stderr := runCLI(t, "check", "--policy", file, "--url", url)
		wantCode := 0
		if want == "(none)" {
			wantCode = 1
		}
		if code != wantCode || !strings.Contains(stdout, "rule       "+want+"\n") {
			t.Errorf("check %s: exit %d, want %d and rule %s\n%s%s", url, code, wantCode, want, stdout, stderr)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
