package policy

import (
	policyv1 "github.com/extauthz/extauthz/proto/extauthz/policy/v1"
	"strings"
	"testing"
)

// tenantPolicy is one templated issuer: iss, its issuer_variables block
// (vars) and its key source line.
func tenantPolicy(iss, vars, source string) string {
	return "version: v1\nissuers:\n  - name: t\n    issuer: '" + iss + "'\n    " + source + "\n" + vars
}

func TestTemplateLoadErrors(t *testing.T) {
	const ms = "https://login.microsoftonline.com/{tenant}/v2.0"
	const jwks = "jwks_uri: https://login.microsoftonline.com/common/keys"
	cases := []struct {
		name, yaml, want string
	}{
		{"variable without entry", tenantPolicy(ms, "", jwks), `issuers[0].issuer_variables: issuer "` + ms + `" uses {tenant}, which needs an entry here`},
		{"unused entry", tenantPolicy(ms, "    issuer_variables:\n      tenant: {}\n      region: {}\n", jwks), `issuers[0].issuer_variables["region"]: issuer "` + ms + `" has no {region}`},
		{"variables without template", tenantPolicy("https://a.example", "    issuer_variables:\n      tenant: {}\n", jwks), `issuers[0].issuer_variables: issuer "https://a.example" has no {variables}`},
		{"bad regexp", tenantPolicy(ms, "    issuer_variables:\n      tenant: {pattern: '[a-'}\n", jwks), `issuers[0].issuer_variables["tenant"].pattern: not an RE2 pattern`},
		{"pattern matches slash", tenantPolicy(ms, "    issuer_variables:\n      tenant: {pattern: '[a-z/]+'}\n", jwks), `issuers[0].issuer_variables["tenant"].pattern: can match '/'`},
		{"pattern matches dot", tenantPolicy(ms, "    issuer_variables:\n      tenant: {pattern: '.+'}\n", jwks), `issuers[0].issuer_variables["tenant"].pattern: can match '/'`},
		{"pattern matches percent", tenantPolicy(ms, "    issuer_variables:\n      tenant: {pattern: '[a-z%]+'}\n", jwks), `issuers[0].issuer_variables["tenant"].pattern: can match '%'`},
		{"pattern matches at", tenantPolicy(ms, "    issuer_variables:\n      tenant: {pattern: '[a-z@]+'}\n", jwks), `issuers[0].issuer_variables["tenant"].pattern: can match '@'`},
		{"allow outside pattern", tenantPolicy(ms, "    issuer_variables:\n      tenant: {pattern: '[a-z]+', allow: [ok, Bad]}\n", jwks), `issuers[0].issuer_variables["tenant"].allow[1]: "Bad" does not match the pattern [a-z]+`},
		{"discovery", tenantPolicy(ms, "    issuer_variables:\n      tenant: {}\n", "discovery: true"), `issuers[0].discovery: a templated issuer cannot discover its keys`},
		{"templated key source", tenantPolicy(ms, "    issuer_variables:\n      tenant: {}\n", "jwks_uri: 'https://login.microsoftonline.com/{tenant}/keys'"), `issuers[0]: the key source "https://login.microsoftonline.com/{tenant}/keys" must not contain { or }`},
		{"adjacent variables", tenantPolicy("https://x/{a}{b}", "    issuer_variables:\n      a: {}\n      b: {}\n", jwks), `issuers[0].issuer: variables must be separated by literal text`},
		{"unbalanced", tenantPolicy("https://x/{a", "    issuer_variables:\n      a: {}\n", jwks), `issuers[0].issuer: unbalanced {`},
		{"repeated", tenantPolicy("https://x/{a}/{a}", "    issuer_variables:\n      a: {}\n", jwks), `issuers[0].issuer: variable {a} appears more than once`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(loadErrors(t, tc.yaml), "\n")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("errors\n%s\nwant one containing\n%s", got, tc.want)
			}
		})
	}
}

func compileTestTemplate(t testing.TB, iss string, pattern string, allow ...string) *Template {
	el := &errorList{}
	defs := map[string]*policyv1.IssuerVariable{"tenant": {Pattern: pattern, Allow: allow}}
	tpl := compileTemplate(el, "issuers[0]", iss, defs)
	if tpl == nil {
		t.Fatalf("compileTemplate(%q): %v", iss, el)
	}
	return tpl
}

func TestTemplateMatch(t *testing.T) {
	tpl := compileTestTemplate(t, "https://login.microsoftonline.com/{tenant}/v2.0", "", "contoso", "fabrikam")
	cases := []struct {
		iss       string
		shape, ok bool
		tenant    string
	}{
		{"https://login.microsoftonline.com/contoso/v2.0", true, true, "contoso"},
		{"https://login.microsoftonline.com/northwind/v2.0", true, false, ""},
		{"https://login.microsoftonline.com/evil.com/x/v2.0", true, false, ""},
		{"https://login.microsoftonline.com/a/../b/v2.0", true, false, ""},
		{"https://login.microsoftonline.com/%2F/v2.0", true, false, ""},
		{"https://login.microsoftonline.com/@evil/v2.0", true, false, ""},
		{"https://login.microsoftonline.com//v2.0", true, false, ""},
		{"https://login.microsoftonline.com/contoso/v2.0/", false, false, ""},
		{"https://login.microsoftonline.com.evil/contoso/v2.0", false, false, ""},
		{"https://login.microsoftonline.com/contoso", false, false, ""},
	}
	for _, tc := range cases {
		vars, shape, ok := tpl.Match(tc.iss)
		if shape != tc.shape || ok != tc.ok || vars["tenant"] != tc.tenant {
			t.Errorf("Match(%q) = %v, %v, %v; want shape %v ok %v tenant %q", tc.iss, vars, shape, ok, tc.shape, tc.ok, tc.tenant)
		}
	}
}

// FuzzIssuerTemplate feeds untrusted iss values to the matcher: whatever
// comes in, an accepted value is safe, matches the pattern, and rebuilds
// exactly the iss it came from.
func FuzzIssuerTemplate(f *testing.F) {
	for _, s := range []string{
		"https://login.microsoftonline.com/contoso/v2.0",
		"https://login.microsoftonline.com/evil.com/x/v2.0",
		"https://login.microsoftonline.com/a/../b/v2.0",
		"https://login.microsoftonline.com/%2F/v2.0",
		"https://login.microsoftonline.com/@evil/v2.0",
		"https://login.microsoftonline.com/v2.0/v2.0",
		"https://login.microsoftonline.com/",
		"",
	} {
		f.Add(s)
	}
	tpl := compileTestTemplate(f, "https://login.microsoftonline.com/{tenant}/v2.0", "")
	f.Fuzz(func(t *testing.T, iss string) {
		vars, shape, ok := tpl.Match(iss)
		if ok && !shape {
			t.Fatalf("ok without shape for %q", iss)
		}
		if !ok {
			if vars != nil {
				t.Fatalf("vars %v for a refused %q", vars, iss)
			}
			return
		}
		v := vars["tenant"]
		if !safeValue(v) || strings.ContainsAny(v, unsafeVariableChars) || len(v) > 64 {
			t.Fatalf("unsafe value %q accepted from %q", v, iss)
		}
		if got := "https://login.microsoftonline.com/" + v + "/v2.0"; got != iss {
			t.Fatalf("value %q rebuilds %q, not %q", v, got, iss)
		}
	})
}
