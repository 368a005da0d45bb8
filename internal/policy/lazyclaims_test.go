package policy

import (
	"context"
	"testing"

	"github.com/extauthz/extauthz/internal/token"
)

// TestLazyClaimsAsMap: every way CEL reads `claims` gives the same value
// whether the claims come as a map or are read one by one from a token's
// payload.
func TestLazyClaimsAsMap(t *testing.T) {
	claims := map[string]any{
		"sub": "alice", "n": int64(3), "f": 1.5, "ok": true, "none": nil,
		"list": []any{"a", int64(2)}, "obj": map[string]any{"k": "v"},
	}
	for _, src := range []string{
		`claims.sub`,
		`claims.n + 1`,
		`claims.f * 2.0`,
		`claims.ok ? "yes" : "no"`,
		`claims.list[1]`,
		`claims.obj.k`,
		`claims["sub"]`,
		`claims.?tenant.orValue("none")`,
		`claims.?sub.orValue("none")`,
		`has(claims.sub) ? "has" : "not"`,
		`has(claims.tenant) ? "has" : "not"`,
		`"sub" in claims ? "in" : "out"`,
		`"tenant" in claims ? "in" : "out"`,
		`claims.size()`,
		`claims.exists(k, k == "obj") ? "found" : "none"`,
		`claims.none == null ? "null" : "not"`,
		`claims == {"sub": "alice"} ? "eq" : "ne"`,
		`claims.tenant`,
	} {
		e := compileTestExpr(t, src)
		want, wantOK := e.Value(context.Background(), &Vars{Claims: claims})
		got, gotOK := e.Value(context.Background(), &Vars{ClaimsOf: token.ClaimMap(claims)})
		if got != want || gotOK != wantOK {
			t.Errorf("%s: lazily %q (%v), as a map %q (%v)", src, got, gotOK, want, wantOK)
		}
	}
}
