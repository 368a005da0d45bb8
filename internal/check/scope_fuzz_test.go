package check

import (
	"regexp"
	"strings"
	"testing"
)

// scopeGrammar is RFC 6749 §3.3's scope, written independently of
// scopeList: scope-tokens of %x21 / %x23-5B / %x5D-7E joined by single
// spaces.
var scopeGrammar = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$`)

// FuzzScopeList: a scope string is accepted exactly when it matches the
// grammar (or is empty), and then its tokens join back to it.
func FuzzScopeList(f *testing.F) {
	for _, s := range []string{
		"", "read", "openid read", "openid  read", " read", "read ", "x\u00a0read", "x\u2028read", "x\tread",
		"read \"x\"", `a\b`, "\x7f", "r\u00e9", "!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~", "a b c d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, ok := scopeList(s)
		if want := s == "" || scopeGrammar.MatchString(s); ok != want {
			t.Fatalf("scopeList(%q) ok = %v, grammar says %v", s, ok, want)
		}
		if !ok {
			if out != nil {
				t.Fatalf("scopeList(%q) refused but returned %q", s, out)
			}
			return
		}
		if strings.Join(out, " ") != s {
			t.Fatalf("scopeList(%q) = %q, which does not join back", s, out)
		}
		got, ok := claimScopes(map[string]any{"scp": toAny(out)})
		if !ok || strings.Join(got, " ") != s {
			t.Fatalf("scp %q read as %q, %v", out, got, ok)
		}
	})
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
