package check

import (
	"strings"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// claimScopes reads a token's scopes: the `scope` string (RFC 6749 §3.3,
// RFC 8693, RFC 9068) or, failing that, the `scp` list (or string) some
// servers issue. ok is false when the claim breaks RFC 6749's grammar —
// scope tokens of %x21 / %x23-5B / %x5D-7E, separated by exactly one
// %x20 — because a lenient split is a privilege escalation: "x\u00a0admin"
// is one scope to its issuer, and must never read as holding "admin".
func claimScopes(claims map[string]any) (scopes []string, ok bool) {
	return claimScopesIn(token.ClaimMap(claims), nil)
}

// claimScopesIn is claimScopes appending to buf[:0], so a Check can keep
// its scopes in its scratch.
func claimScopesIn(claims token.ClaimReader, buf []string) (scopes []string, ok bool) {
	if str, isStr := claims.ClaimString("scope"); isStr {
		return scopeListIn(str, buf)
	}
	if claims.HasClaim("scope") {
		return nil, false
	}
	if str, isStr := claims.ClaimString("scp"); isStr {
		return scopeListIn(str, buf)
	}
	v, _ := claims.Claim("scp")
	switch scp := v.(type) {
	case nil:
		return nil, true
	case []any:
		out := buf[:0]
		if out == nil {
			out = make([]string, 0, len(scp))
		}
		for _, e := range scp {
			s, isStr := e.(string)
			if !isStr || !policy.IsScopeToken(s) {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// assertionScopes are the scopes CEL sees of a client assertion: none when
// its claim is malformed (an assertion is not refused for what only access
// tokens carry, unless the rule asks for strict typing).
func assertionScopes(claims map[string]any) []string {
	s, _ := claimScopes(claims)
	return s
}

// scopeList splits RFC 6749's scope = scope-token *( SP scope-token ). An
// empty string holds no scope.
func scopeList(s string) ([]string, bool) { return scopeListIn(s, nil) }

// scopeListIn is scopeList appending to buf[:0].
func scopeListIn(s string, buf []string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	out := buf[:0]
	if out == nil {
		out = make([]string, 0, strings.Count(s, " ")+1)
	}
	for {
		t, rest, more := strings.Cut(s, " ")
		if !policy.IsScopeToken(t) {
			return nil, false
		}
		out = append(out, t)
		if !more {
			return out, true
		}
		s = rest
	}
}
