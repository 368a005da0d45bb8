package policy

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// loadWarnings loads files (name to body) from one directory and returns
// the warnings as validate prints them (without "warning: "), files named
// relative to the directory.
func loadWarnings(t *testing.T, files map[string]string) []string {
	t.Helper()
	dir := writePolicy(t, files)
	var got []string
	_, err := Load([]string{dir}, Options{Keys: offlinePlane(t), Warn: func(w FieldError) {
		got = append(got, strings.TrimPrefix(w.Detail(), dir+string(filepath.Separator)))
	}})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

const lintIssuer = `version: v1
issuers:
  - {name: a, issuer: https://a.example, jwks_uri: https://a.example/jwks}
rules:
`

// TestLintWarnings: each policy loads, with exactly these warnings.
func TestLintWarnings(t *testing.T) {
	const publicNote = "on a public route (no credential) claims, client_id and the other variables of a credential are empty, and then it is always "
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"header constant empty", lintIssuer + `  - name: r
    bearer: {issuers: [a], audiences: [x]}
    headers:
      x-empty: '""'
      x-null: 'null'
      x-none: 'optional.none()'
      x-list: '[]'
      x-crlf: '"a\r\nb"'
      x-error: '1 / 0 == 1 ? "a" : "b"'
      x-fine: '"constant"'
`, []string{
			`p.yaml:8:7: rules[0].headers["x-empty"]: never sets the header: it reads no variable and is always the empty string`,
			`p.yaml:9:7: rules[0].headers["x-null"]: never sets the header: it reads no variable and is always null`,
			`p.yaml:10:7: rules[0].headers["x-none"]: never sets the header: it reads no variable and is always optional.none()`,
			`p.yaml:11:7: rules[0].headers["x-list"]: never sets the header: it reads no variable and is always an empty list`,
			`p.yaml:12:7: rules[0].headers["x-crlf"]: never sets the header: it reads no variable and is always a value with CR, LF or NUL, which is never sent`,
			`p.yaml:13:7: rules[0].headers["x-error"]: never sets the header: it reads no variable and is always an error (division by zero)`,
		}},
		{"header type never sent", lintIssuer + `  - name: r
    bearer: {issuers: [a], audiences: [x]}
    headers:
      x-claims: claims
      x-bytes: 'bytes(client_id)'
      x-maps: '[claims]'
      x-sub: claims.sub
      x-opt: claims.?sub
`, []string{
			`p.yaml:8:7: rules[0].headers["x-claims"]: never sets the header: its value is of type map(string, dyn), and only strings, bools, numbers and lists or optionals of them are sent`,
			`p.yaml:9:7: rules[0].headers["x-bytes"]: never sets the header: its value is of type bytes, and only strings, bools, numbers and lists or optionals of them are sent`,
			`p.yaml:10:7: rules[0].headers["x-maps"]: never sets the header: its value is of type list(map(string, dyn)), and only strings, bools, numbers and lists or optionals of them are sent`,
		}},
		{"public route header", lintIssuer + `  - name: public
    match: {paths: [/p]}
    headers:
      x-client: client_id
      x-sub: claims.sub
      x-kind: 'credential == "" ? "anonymous" : credential'
      x-host: request.host
      x-either: 'client_id != "" ? client_id : request.host'
  - name: r
    bearer: {issuers: [a], audiences: [x]}
`, []string{
			`p.yaml:8:7: rules[0].headers["x-client"]: never sets the header: ` + publicNote + `the empty string`,
			`p.yaml:9:7: rules[0].headers["x-sub"]: never sets the header: ` + publicNote + `an error (no such key: sub)`,
		}},
		{"require never true", lintIssuer + `  - name: public
    match: {paths: [/p]}
    require: ['"admin" in scopes', 'claims.role == "admin"', 'request.method == "GET"', 'credential == ""']
  - name: r
    bearer: {issuers: [a], audiences: [x]}
    require: ['1 == 2', 'false', ' false ', '"reports" in scopes']
`, []string{
			`p.yaml:7:15: rules[0].require[0]: is never true: ` + publicNote + `false, so the rule never allows`,
			`p.yaml:7:36: rules[0].require[1]: is never true: ` + publicNote + `an error (no such key: role), so the rule never allows`,
			`p.yaml:10:15: rules[1].require[0]: is never true: it reads no variable and is always false, so the rule never allows (write false to close a route on purpose)`,
		}},
		{"shadowed by an empty match", lintIssuer + `  - name: all
    bearer: {issuers: [a], audiences: [x]}
  - name: reports
    match: {path_prefixes: [/reports/]}
    bearer: {issuers: [a], audiences: [x]}
`, []string{
			`p.yaml:7:5: rules[1]: rule "reports" is never selected by matching: rule "all" comes first and has no match, so it matches every request; only a route whose context_extensions name it (rule: reports) selects it`,
		}},
		{"shadowed by the same match", lintIssuer + `  - name: first
    match: {hosts: [b.example, '*.a.example'], methods: [GET, POST]}
    bearer: {issuers: [a], audiences: [x]}
  - name: narrower
    match: {hosts: [b.example], methods: [GET, POST]}
    bearer: {issuers: [a], audiences: [x]}
  - name: again
    match: {methods: [POST, GET], hosts: ['*.a.example', B.example]}
    bearer: {issuers: [a], audiences: [y]}
`, []string{
			`p.yaml:11:5: rules[2]: rule "again" is never selected by matching: rule "first" comes first and has the same match; only a route whose context_extensions name it (rule: again) selects it`,
		}},
		{"match never holds", lintIssuer + `  - name: r
    match:
      paths: [/a, /b/c]
      path_prefixes: [/c/, /b/d]
    bearer: {issuers: [a], audiences: [x]}
  - name: fine
    match: {paths: [/b/c], path_prefixes: [/b/]}
    bearer: {issuers: [a], audiences: [x]}
`, []string{
			`p.yaml:6:5: rules[0].match: never holds: no path of paths starts with one of path_prefixes, and both must hold; only a route whose context_extensions name the rule (rule: r) selects it`,
		}},
		{"public route under default allow", lintIssuer + `  - name: other-host
    match: {hosts: [other.example]}
  - name: health
    match: {paths: [/healthz]}
  - name: api
    match: {path_prefixes: [/api/]}
    bearer: {issuers: [a], audiences: [x]}
  - name: docs
    match: {hosts: [docs.example], paths: [/docs]}
  - name: posts
    match: {methods: [POST], path_prefixes: [/posts/]}
    bearer: {issuers: [a], audiences: [x]}
  - name: under-other-host
    match: {hosts: ['*.other.example'], path_prefixes: [/app/]}
    bearer: {issuers: [a], audiences: [x]}
  - name: tagged
    match: {paths: [/tagged]}
    headers: {x-public: '"yes"'}
default_action: allow
`, []string{
			`p.yaml:7:5: rules[1]: rule "health" is a public route with no require or headers, and no later rule matches its requests: default_action allow would allow them just the same; remove it, or give it a credential`,
			`p.yaml:12:5: rules[3]: rule "docs" is a public route with no require or headers, and no later rule matches its requests: default_action allow would allow them just the same; remove it, or give it a credential`,
		}},
		{"unused issuer", `version: v1
issuers:
  - {name: a, issuer: https://a.example, jwks_uri: https://a.example/jwks}
  - {name: old, issuer: https://old.example, jwks_uri: https://old.example/jwks}
rules:
  - {name: r, bearer: {issuers: [a], audiences: [x]}}
`, []string{
			`p.yaml:4:5: issuers[1]: no rule names issuer "old", so it verifies no token`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := loadWarnings(t, map[string]string{"p.yaml": tc.yaml})
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestLintAcrossFiles: a rule is shadowed by a catch-all of an earlier
// file, and warnings come in load order, each naming its own file.
func TestLintAcrossFiles(t *testing.T) {
	got := loadWarnings(t, map[string]string{
		"10-all.yaml": lintIssuer + "  - {name: all, bearer: {issuers: [a], audiences: [x]}}\n",
		"20-api.yaml": "version: v1\nrules:\n  - name: api\n    match: {hosts: [api.example]}\n    bearer: {issuers: [a], audiences: [api]}\n",
	})
	want := `20-api.yaml:3:5: rules[0]: rule "api" is never selected by matching: rule "all" comes first and has no match, so it matches every request; only a route whose context_extensions name it (rule: api) selects it`
	if strings.Join(got, "\n") != want {
		t.Fatalf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// TestLintNoFalseWarnings: the spec's complete example and the examples
// that say what they mean warn about nothing, and a failed load calls Warn
// for nothing.
func TestLintNoFalseWarnings(t *testing.T) {
	if got := loadWarnings(t, map[string]string{"policy.yaml": specExample}); len(got) > 0 {
		t.Errorf("the spec example warns:\n%s", strings.Join(got, "\n"))
	}
	if got := loadWarnings(t, map[string]string{"p.yaml": lintIssuer + `  - name: token
    match: {paths: [/token], methods: [POST]}
    client_assertion: {issuers: [a], audiences: [x]}
    headers:
      x-client-id: client_id
      x-agent: 'claims.?client_type.orValue("") == "ai-agent"'
      x-scopes: scopes
  - name: health
    match: {paths: [/healthz]}
  - name: api
    match: {path_prefixes: [/]}
    bearer: {issuers: [a], audiences: [x]}
    require: ['request.method == "GET" || "write" in scopes']
default_action: allow
`}); len(got) > 0 {
		t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
	}
	called := false
	dir := writePolicy(t, map[string]string{"p.yaml": lintIssuer + "  - {name: r, headers: {x-a: '\"\"'}, mode: bad}\n"})
	if _, err := Load([]string{dir}, Options{Keys: offlinePlane(t), Warn: func(FieldError) { called = true }}); err == nil || called {
		t.Errorf("err = %v, Warn called %v; want an error and no warning", err, called)
	}
}

func TestWarnLogger(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	WarnLogger(log)(FieldError{File: "p.yaml", Line: 3, Column: 5, Path: "issuers[1]", Msg: `no rule names issuer "old"`})
	want := `level=WARN msg="policy warning: no rule names issuer \"old\"" file=p.yaml line=3 column=5 path=issuers[1]` + "\n"
	if buf.String() != want {
		t.Errorf("logged %q, want %q", buf.String(), want)
	}
}
