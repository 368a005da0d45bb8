package main

import (
	"encoding/json"
	"encoding/xml"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// formatFixture is a directory of a file with a pass and a failure and a
// file that cannot run, against a policy of three rules.
func formatFixture(t *testing.T) (dir, good, broken string) {
	t.Helper()
	ex := examplesDir(t)
	dir = t.TempDir()
	writeFile(t, dir, "policy.yaml", `
version: v1
issuers:
  - {name: login, issuer: https://login.example.com, jwks_file: `+ex+`/keys/login.jwks.json}
rules:
  - name: health
    match: {paths: [/healthz]}
  - name: reports
    match: {hosts: [api.example.com], path_prefixes: [/reports/]}
    bearer: {issuers: [login], audiences: [api.example.com]}
    require:
      - 'claims.sub != ""'
      - 'claims.?tenant.orValue("") == "acme"'
  - name: admin
    match: {hosts: [admin.example.com]}
    bearer: {issuers: [login], audiences: [admin.example.com]}
    require: ['"admin" in scopes']
`)
	good = writeFile(t, dir, "a_test.yaml", `
policy: policy.yaml
keys: {login: `+ex+`/keys/login.private.jwk.json}
now: 2026-01-01T00:00:00Z
tests:
  - name: health is public
    request: {host: api.example.com, path: /healthz}
    expect: {decision: allow, rule: health}
  - name: a report for <acme> & "co"
    request: {host: api.example.com, path: /reports/1}
    token: {as: bearer, key: login, claims: {iss: https://login.example.com, sub: alice, aud: api.example.com, exp: +1m}}
    expect: {decision: allow}
`)
	broken = writeFile(t, dir, "b_test.yaml", "policy: policy.yaml\ntests: []\n")
	return dir, good, broken
}

func TestFormatJSON(t *testing.T) {
	dir, good, broken := formatFixture(t)
	code, out, errOut := runCLI(t, "test", "--format", "json", dir)
	if code != 2 {
		t.Errorf("exit %d, want 2 (a file cannot run)", code)
	}
	var doc struct {
		Files []struct {
			File  string `json:"file"`
			Error string `json:"error"`
			Tests []struct {
				Name     string   `json:"name"`
				Passed   bool     `json:"passed"`
				Decision string   `json:"decision"`
				Reason   string   `json:"reason"`
				Rule     string   `json:"rule"`
				Diffs    []string `json:"diffs"`
				Steps    []struct {
					Check  string `json:"check"`
					OK     bool   `json:"ok"`
					Detail string `json:"detail"`
				} `json:"steps"`
				Seconds float64 `json:"seconds"`
			} `json:"tests"`
			Policy  string  `json:"policy"`
			Seconds float64 `json:"seconds"`
		} `json:"files"`
		Coverage []struct {
			Policy       string
			Rules        struct{ Exercised, Total int }
			Requires     struct{ Exercised, Total int }
			NotExercised []string `json:"not_exercised"`
		} `json:"coverage"`
		Passed, Failed, Errors int
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	if dec.More() {
		t.Errorf("stdout holds more than the JSON report:\n%s", out)
	}
	if doc.Passed != 1 || doc.Failed != 1 || doc.Errors != 1 || len(doc.Files) != 2 {
		t.Fatalf("passed %d, failed %d, errors %d, %d files; want 1, 1, 1, 2\n%s", doc.Passed, doc.Failed, doc.Errors, len(doc.Files), out)
	}
	a, b := doc.Files[0], doc.Files[1]
	if a.File != good || a.Error != "" || len(a.Tests) != 2 || b.File != broken || !strings.Contains(b.Error, "tests: at least one test") || len(b.Tests) != 0 {
		t.Errorf("files %+v", doc.Files)
	}
	pass, fail := a.Tests[0], a.Tests[1]
	if !pass.Passed || pass.Decision != "allow" || pass.Rule != "health" || pass.Steps != nil {
		t.Errorf("a passing test: %+v (steps only with -v)", pass)
	}
	if fail.Passed || fail.Decision != "deny" || fail.Reason != "requirement_failed" || fail.Rule != "reports" ||
		!slices.Equal(fail.Diffs, []string{`decision: want "allow", got "deny"`}) || len(fail.Steps) == 0 {
		t.Errorf("a failing test: %+v", fail)
	}
	if len(doc.Coverage) != 1 {
		t.Fatalf("coverage %+v, want one policy", doc.Coverage)
	}
	c := doc.Coverage[0]
	if c.Policy != filepath.Join(dir, "policy.yaml") || c.Rules.Exercised != 2 || c.Rules.Total != 3 || c.Requires.Exercised != 2 || c.Requires.Total != 3 ||
		!slices.Equal(c.NotExercised, []string{"rules[2] admin"}) {
		t.Errorf("coverage %+v", c)
	}
	if !strings.HasSuffix(errOut, "coverage of "+c.Policy+": 2/3 rules, 2/3 requires; not exercised: rules[2] admin\n1 passed, 1 failed\n") {
		t.Errorf("stderr does not end with the coverage and summary lines:\n%s", errOut)
	}
	// -v adds the steps of passing tests.
	_, out, _ = runCLI(t, "test", "--format", "json", "-v", good)
	if !strings.Contains(out, `"check": "select rule"`) || strings.Count(out, `"steps"`) != 2 {
		t.Errorf("-v: the steps of both tests are not reported:\n%s", out)
	}
}

func TestFormatJUnit(t *testing.T) {
	dir, good, broken := formatFixture(t)
	code, out, errOut := runCLI(t, "test", "-format=junit", dir)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.HasPrefix(out, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration:\n%s", out)
	}
	type problem struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Time     string   `xml:"time,attr"`
		Suites   []struct {
			Name       string `xml:"name,attr"`
			Tests      int    `xml:"tests,attr"`
			Failures   int    `xml:"failures,attr"`
			Errors     int    `xml:"errors,attr"`
			Properties []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
			Cases []struct {
				Name      string   `xml:"name,attr"`
				Classname string   `xml:"classname,attr"`
				Time      string   `xml:"time,attr"`
				Failure   *problem `xml:"failure"`
				Error     *problem `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, out)
	}
	if doc.Tests != 3 || doc.Failures != 1 || doc.Errors != 1 || len(doc.Suites) != 2 {
		t.Fatalf("testsuites: tests %d, failures %d, errors %d, %d suites; want 3, 1, 1, 2\n%s", doc.Tests, doc.Failures, doc.Errors, len(doc.Suites), out)
	}
	if _, err := strconv.ParseFloat(doc.Time, 64); err != nil {
		t.Errorf("time %q: %v", doc.Time, err)
	}
	a, b := doc.Suites[0], doc.Suites[1]
	if a.Name != good || a.Tests != 2 || a.Failures != 1 || a.Errors != 0 || len(a.Cases) != 2 {
		t.Fatalf("suite %+v", a)
	}
	if len(a.Properties) != 1 || a.Properties[0].Name != "coverage" || !strings.Contains(a.Properties[0].Value, ": 2/3 rules, 2/3 requires; not exercised: rules[2] admin") {
		t.Errorf("suite properties %+v", a.Properties)
	}
	pass, fail := a.Cases[0], a.Cases[1]
	class := strings.ReplaceAll(strings.TrimPrefix(strings.TrimSuffix(good, ".yaml"), "/"), "/", ".")
	if pass.Name != "health is public" || pass.Classname != class || pass.Failure != nil || pass.Error != nil {
		t.Errorf("passing case %+v, want classname %q", pass, class)
	}
	if fail.Name != `a report for <acme> & "co"` || fail.Failure == nil || fail.Failure.Message != `decision: want "allow", got "deny"` ||
		fail.Failure.Type != "mismatch" || !strings.Contains(fail.Failure.Text, "FAIL require: claims.?tenant") {
		t.Errorf("failing case %+v %+v", fail, fail.Failure)
	}
	if b.Name != broken || b.Tests != 1 || b.Errors != 1 || len(b.Cases) != 1 || b.Cases[0].Error == nil || !strings.Contains(b.Cases[0].Error.Message, "tests: at least one test") {
		t.Errorf("a file that cannot run: %+v", b)
	}
	if !strings.Contains(errOut, "ERROR "+broken+": ") || !strings.HasSuffix(errOut, "1 passed, 1 failed\n") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if code, _, errOut := runCLI(t, "test", "--format", "tap", dir); code != 2 || !strings.Contains(errOut, "want text, json or junit") {
		t.Errorf("--format tap: exit %d, %q", code, errOut)
	}
}

// TestCoverage checks the coverage line: a rule counts when a decision
// names it, allowed or denied; a require when it is evaluated; files of
// one policy add up, and -run narrows it.
func TestCoverage(t *testing.T) {
	dir, good, _ := formatFixture(t)
	ex := examplesDir(t)
	more := writeFile(t, dir, "c_test.yaml", `
policy: policy.yaml
keys: {login: `+ex+`/keys/login.private.jwk.json}
now: 2026-01-01T00:00:00Z
tests:
  - name: admin without a token is denied before its require
    request: {host: admin.example.com}
    expect: {decision: deny, rule: admin, reason: credential_missing}
`)
	policy := filepath.Join(dir, "policy.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{good}, "coverage of " + policy + ": 2/3 rules, 2/3 requires; not exercised: rules[2] admin\n"},
		{[]string{good, more}, "coverage of " + policy + ": 3/3 rules, 2/3 requires; not exercised: rules[2] admin require[0]\n"},
		{[]string{"-run", "health", good}, "coverage of " + policy + ": 1/3 rules, 0/3 requires; not exercised: rules[1] reports, rules[2] admin\n"},
	} {
		_, out, errOut := runCLI(t, append([]string{"test"}, tc.args...)...)
		counts(t, out)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) < 2 || lines[len(lines)-2]+"\n" != tc.want {
			t.Errorf("extauthz test %q: want the line before the summary to be\n%s\ngot:\n%s%s", tc.args, tc.want, out, errOut)
		}
	}
	// Each policy has its line, in the order first tested.
	_, out, _ := runCLI(t, "test", good, "../../examples/policies/tests/default_allow_test.yaml")
	if !strings.Contains(out, "\ncoverage of "+policy+": ") || !strings.Contains(out, "\ncoverage of ../../examples/default-allow/policy.yaml: 1/1 rules, 0/0 requires\n") {
		t.Errorf("one line per policy:\n%s", out)
	}
}
