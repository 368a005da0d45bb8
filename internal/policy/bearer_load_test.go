package policy

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBearerLoadErrors: rule scopes follow RFC 6749's scope-token grammar,
// and profile names a known profile.
func TestBearerLoadErrors(t *testing.T) {
	const head = "version: v1\nissuers:\n  - {name: a, issuer: https://a.example, jwks_uri: https://a.example/jwks}\nrules:\n"
	for name, c := range map[string]struct{ rule, want string }{
		"scope with a space":        {`  - {name: r, bearer: {issuers: [a], audiences: [x], scopes: ["reports write"]}}`, `rules[0].bearer.scopes[0]: not a valid scope token`},
		"scope with NBSP":           {"  - {name: r, bearer: {issuers: [a], audiences: [x], scopes: [\"reports\u00a0write\"]}}", `rules[0].bearer.scopes[0]: not a valid scope token`},
		"scope with a quote":        {`  - {name: r, bearer: {issuers: [a], audiences: [x], scopes: ['a"b']}}`, `rules[0].bearer.scopes[0]: not a valid scope token`},
		"empty scope":               {`  - {name: r, bearer: {issuers: [a], audiences: [x], scopes: [""]}}`, `rules[0].bearer.scopes[0]: not a valid scope token`},
		"profile of the wrong case": {`  - {name: r, bearer: {issuers: [a], audiences: [x], profile: RFC9068}}`, `rules[0].bearer.profile: must be "rfc9068" or left out, got "RFC9068"`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writePolicy(t, map[string]string{"p.yaml": head + c.rule + "\n"})
			_, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
	dir := writePolicy(t, map[string]string{"p.yaml": head + "  - {name: r, bearer: {issuers: [a], audiences: [x], scopes: ['reports:write', '[x]'], profile: rfc9068}}\n"})
	if _, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)}); err != nil {
		t.Fatalf("a valid rule: %v", err)
	}
}
