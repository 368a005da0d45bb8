package check

import (
	"slices"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// TestScopeListIn: splitting into a Check's scratch gives what splitting
// into a new slice gives (strings.Split and the grammar), for every shape of
// separator and with a buffer too small to hold the scopes.
func TestScopeListIn(t *testing.T) {
	split := func(s string) ([]string, bool) {
		if s == "" {
			return nil, true
		}
		out := strings.Split(s, " ")
		for _, tok := range out {
			if !policy.IsScopeToken(tok) {
				return nil, false
			}
		}
		return out, true
	}
	for _, s := range []string{"", "read", "openid read write", "a  b", " a", "a ", " ", "a\u00a0admin", "a b c d e f g h i j k", "x\tadmin"} {
		want, wantOK := split(s)
		for _, buf := range [][]string{nil, make([]string, 0, 2), make([]string, 0, 8)} {
			got, ok := scopeListIn(s, buf)
			if ok != wantOK || !slices.Equal(got, want) || (got == nil) != (want == nil) {
				t.Errorf("scopeListIn(%q, cap %d) = %q, %v; want %q, %v", s, cap(buf), got, ok, want, wantOK)
			}
		}
	}
	claims := map[string]any{"scp": []any{}}
	if got, ok := claimScopesIn(token.ClaimMap(claims), make([]string, 0, 8)); !ok || got == nil || len(got) != 0 {
		t.Errorf("an empty scp list gives %#v, %v; want an empty list", got, ok)
	}
}
