package adversarial_test

import (
	"testing"

	"github.com/extauthz/extauthz/internal/check"
)

// TestScopeGrammar: RFC 6749 §3.3 separates scope tokens with one %x20
// and builds them of %x21 / %x23-5B / %x5D-7E. A scope claim that breaks
// the grammar grants nothing: a token whose one scope is "x<NBSP>read" must
// never count as holding "read". It is refused as invalid_token
// (scope_malformed), whether or not the rule asks for scopes.
func TestScopeGrammar(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var attacks []attack
	for name, scope := range map[string]string{
		"NBSP":              "dyn:x\u00a0read",
		"LINE SEPARATOR":    "dyn:x\u2028read",
		"NEL":               "dyn:x\u0085read",
		"IDEOGRAPHIC SPACE": "dyn:x\u3000read",
		"TAB":               "dyn:x\tread",
		"CR":                "dyn:x\rread",
		"LF":                "dyn:x\nread",
		"VT":                "dyn:x\vread",
		"FF":                "dyn:x\fread",
		"two spaces":        "openid  read",
		"leading space":     " read",
		"trailing space":    "read ",
		"a quote":           `read "x"`,
		"a backslash":       `read x\y`,
		"DEL":               "read \x7f",
		"non-ASCII scope":   "read r\u00e9ports",
		"NUL":               "read\x00",
		"only a space":      " ",
	} {
		attacks = append(attacks, attack{name: "scope " + name, req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "scope", scope))), want: invalidToken(check.ReasonScopeMalformed)})
	}
	for name, scp := range map[string]any{
		"member with NBSP":    []any{"dyn:x\u00a0read"},
		"member with a space": []any{"openid read"},
		"empty member":        []any{"read", ""},
		"number member":       []any{"read", 1},
		"null member":         []any{"read", nil},
		"nested list":         []any{[]any{"read"}},
		"object":              map[string]any{"read": true},
		"number":              7,
		"string with TAB":     "x\tread",
	} {
		attacks = append(attacks, attack{name: "scp " + name, req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "scope", "<delete>", "scp", scp))), want: invalidToken(check.ReasonScopeMalformed)})
	}
	attacks = append(attacks,
		attack{name: "scope not a string", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "scope", []any{"read"}))), want: invalidToken(check.ReasonScopeMalformed)},
		attack{name: "a well-formed scope without read", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "scope", "openid reads"))), want: forbidden(check.ReasonScope)},
	)
	h.run(t, attacks)
	set := map[string]string{"x-client-id": "reporting-app", "x-user": "alice"}
	for name, c := range map[string]claims{
		"scope string":      with(h.loginClaims(), "scope", "openid read"),
		"scope of one":      with(h.loginClaims(), "scope", "read"),
		"scp list":          with(h.loginClaims(), "scope", "<delete>", "scp", []any{"openid", "read"}),
		"scp string":        with(h.loginClaims(), "scope", "<delete>", "scp", "read"),
		"every legal octet": with(h.loginClaims(), "scope", "read !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~"),
	} {
		t.Run("allow "+name, func(t *testing.T) {
			assertAllow(t, h.check(t, apiReq("Bearer "+signLogin(c))), set, removeAllBut(set))
		})
	}
}
