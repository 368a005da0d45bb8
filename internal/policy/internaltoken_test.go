package policy

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const tokenIssuers = `version: v1
issuers:
  - name: a
    issuer: https://a.example
    jwks_uri: https://a.example/jwks
`

func TestInternalTokenCompiles(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.yaml": tokenIssuers + `
rules:
  - name: r
    bearer: {issuers: [a], audiences: [x]}
    headers: {x-client-id: client_id}
    internal_token:
      audience: svc
      header: X-Svc-Token
      lifetime: 2m
      purpose: read
      claims:
        user: claims.sub
        path: request.path
  - name: plain
    bearer: {issuers: [a], audiences: [x]}
`})
	snap, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := snap.ruleByName["r"]
	it := r.InternalToken
	if it.Audience != "svc" || it.Header != "x-svc-token" || it.Lifetime != 2*time.Minute || it.Purpose != "read" || !it.PerRequest || len(it.Claims) != 2 {
		t.Fatalf("internal token = %+v", it)
	}
	if r.SetHeaders() != 2 {
		t.Fatalf("SetHeaders = %d", r.SetHeaders())
	}
	for _, name := range []string{"x-svc-token", "x_svc_token", "x-svc_token", "x_svc-token"} {
		if !slices.Contains(snap.Managed, name) {
			t.Errorf("%s not managed", name)
		}
		if want := name != "x-svc-token"; slices.Contains(r.Remove, name) != want {
			t.Errorf("rule r removes %s: %v, want %v", name, !want, want)
		}
		if !slices.Contains(snap.ruleByName["plain"].Remove, name) {
			t.Errorf("rule plain keeps %s", name)
		}
	}
	if !snap.UsesInternalTokens() {
		t.Fatal("UsesInternalTokens = false")
	}
	// Defaults.
	dir = writePolicy(t, map[string]string{"p.yaml": tokenIssuers + "rules:\n  - name: r\n    internal_token: {audience: svc}\n"})
	snap, err = Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	if it := snap.ruleByName["r"].InternalToken; it.Header != "x-extauthz-token" || it.Lifetime != time.Minute || it.PerRequest {
		t.Fatalf("defaults = %+v", it)
	}
}

func TestInternalTokenErrors(t *testing.T) {
	for name, tc := range map[string]struct{ rule, want string }{
		"audience":  {"internal_token: {header: x-t}", "rules[0].internal_token.audience: required"},
		"header":    {"internal_token: {audience: s, header: 'x t'}", `rules[0].internal_token.header: not a valid header name: "x t"`},
		"reserved":  {"internal_token: {audience: s, header: host}", `rules[0].internal_token.header: "host" is reserved`},
		"lifetime":  {"internal_token: {audience: s, lifetime: 2h}", "rules[0].internal_token.lifetime: must be at most 1h0m0s, got 2h0m0s"},
		"zero":      {"internal_token: {audience: s, lifetime: 0s}", "rules[0].internal_token.lifetime: must be positive"},
		"fraction":  {"internal_token: {audience: s, lifetime: 1500ms}", "rules[0].internal_token.lifetime: must be whole seconds"},
		"claim iss": {"internal_token: {audience: s, claims: {iss: '\"x\"'}}", `rules[0].internal_token.claims["iss"]: "iss" is set by extauthz and cannot be overridden`},
		"claim sub": {"internal_token: {audience: s, claims: {sub: 'claims.sub'}}", `rules[0].internal_token.claims["sub"]: "sub" is set by extauthz`},
		"bytes":     {"internal_token: {audience: s, claims: {b: 'b\"x\"'}}", `rules[0].internal_token.claims["b"]: yields bytes, which has no JSON form`},
		"time":      {"internal_token: {audience: s, claims: {b: 'timestamp(\"2030-01-01T00:00:00Z\")'}}", `yields google.protobuf.Timestamp, which has no JSON form`},
		"cel":       {"internal_token: {audience: s, claims: {b: 'clams.sub'}}", `rules[0].internal_token.claims["b"]`},
		"cost": {
			"internal_token: {audience: s, claims: {b: 'claims.l.all(x, claims.l.all(y, claims.l.all(z, x == y && y == z)))'}}",
			`rules[0].internal_token.claims["b"]: too expensive`,
		},
		"header twice": {"headers: {x-t: client_id}\n    internal_token: {audience: s, header: x-t}", `rules[0].internal_token.header: header "x-t" is also set by headers`},
	} {
		t.Run(name, func(t *testing.T) {
			errs := loadErrors(t, tokenIssuers+"rules:\n  - name: r\n    "+tc.rule+"\n")
			if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
				t.Fatalf("errors = %q, want one with %q", errs, tc.want)
			}
		})
	}
}

// TestInternalTokenNoKeys: a server without signing keys refuses the rule
// at load, naming it.
func TestInternalTokenNoKeys(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.yaml": tokenIssuers + "rules:\n  - name: r\n    internal_token: {audience: s}\n"})
	_, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t), NoTokenKeys: "needs --token-keys"})
	var le *LoadError
	if !errors.As(err, &le) || len(le.Errors) != 1 || le.Errors[0].Path != "rules[0].internal_token" || le.Errors[0].Msg != "needs --token-keys" || le.Errors[0].Line != 8 {
		t.Fatalf("err = %#v", err)
	}
}

func TestInternalTokenEval(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.yaml": tokenIssuers + `
rules:
  - name: r
    internal_token:
      audience: s
      claims:
        s: '"x\r\n"'
        n: '1 + 2'
        d: '1.5'
        l: '[1, "a", true]'
        m: '{"k": [claims.sub]}'
        none: 'claims.?nope'
        nul: 'null'
`})
	snap, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := snap.ruleByName["r"].InternalToken.Eval(context.Background(), &Vars{Claims: map[string]any{"sub": "u"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"s": "x\r\n", "n": int64(3), "d": 1.5, "l": []any{int64(1), "a", true}, "m": map[string]any{"k": []any{"u"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims = %#v\nwant %#v", got, want)
	}
	if _, err := snap.ruleByName["r"].InternalToken.Eval(context.Background(), &Vars{}); err == nil {
		t.Fatal("claims.sub of an empty map evaluated")
	}
}
