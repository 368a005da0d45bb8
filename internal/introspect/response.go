package introspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/extauthz/extauthz/internal/token"
)

// parseResponse reads an RFC 7662 §2.2 response strictly: one JSON object
// (no duplicate members, valid UTF-8), `active` a JSON boolean. An inactive
// answer is ErrInactive whatever else it holds (§2.2 says it should hold
// nothing else). An active one must type every member rules read: exp,
// iat, nbf numbers; aud a string or an array of strings; scope a string;
// client_id, sub, iss, jti, username, token_type strings; cnf an object. A
// lax reading of any of them is how a check gets skipped, so each is an
// error, which the caller counts as the endpoint's fault.
func parseResponse(body []byte) (*token.Token, error) {
	members, err := token.ParseObject(string(body))
	if err != nil {
		return nil, fmt.Errorf("response is not a JSON object: %w", err)
	}
	return fromMembers(members)
}

func fromMembers(members map[string]any) (*token.Token, error) {
	v, ok := members["active"]
	if !ok {
		return nil, errors.New("response has no active member")
	}
	active, ok := v.(bool)
	if !ok {
		return nil, fmt.Errorf("active is %s, not a JSON boolean", token.JSONType(v))
	}
	if !active {
		return nil, ErrInactive
	}
	for _, name := range []string{"scope", "client_id", "username", "token_type"} {
		if v, ok := members[name]; ok {
			if _, str := v.(string); !str {
				return nil, fmt.Errorf("%s is %s, not a string", name, token.JSONType(v))
			}
		}
	}
	if v, ok := members["cnf"]; ok {
		if _, obj := v.(map[string]any); !obj {
			return nil, fmt.Errorf("cnf is %s, not an object", token.JSONType(v))
		}
	}
	// iss, sub, jti, exp, nbf, iat and aud are typed as in a JWT.
	tok, err := token.FromClaims(members)
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// parseJWT verifies an RFC 9701 response: a JWS of typ
// token-introspection+jwt signed by the issuer, for us (aud our client_id),
// with the answer under token_introspection.
func (c *Client) parseJWT(ctx context.Context, body string, now time.Time, shown string) (*token.Token, error) {
	bad := func(outcome, format string, args ...any) (*token.Token, error) {
		return nil, &fault{outcome: outcome, err: fmt.Errorf("%s: JWT response: "+format, append([]any{shown}, args...)...)}
	}
	jws, err := token.Parse(body, token.Limits{MaxTokenBytes: MaxResponseBytes})
	if err != nil {
		return bad(outcomeSignature, "%w", err)
	}
	if !slices.Contains(c.spec.Algorithms, jws.Header.Alg) {
		return bad(outcomeSignature, "alg %s is not in the issuer's allow-list", jws.Header.Alg)
	}
	if !jws.Header.TypeIs("token-introspection+jwt") {
		return bad(outcomeSignature, "typ %q is not token-introspection+jwt", jws.Header.Typ)
	}
	candidates, err := c.spec.Keys.Keys(ctx, jws.Header.Kid)
	if err != nil {
		return bad(outcomeKeysMissing, "issuer keys: %w", err)
	}
	if err := jws.Verify(candidates); err != nil {
		return bad(outcomeSignature, "%w", err)
	}
	if !jws.HasIssuer || jws.Issuer != c.spec.Issuer {
		return bad(outcomeSignature, "iss %q is not the issuer %q", jws.Issuer, c.spec.Issuer)
	}
	if !slices.Contains(jws.Audience, c.spec.ClientID) {
		return bad(outcomeSignature, "aud %q does not name our client_id %q", jws.Audience, c.spec.ClientID)
	}
	// iat is when the answer was made: one from the future is refused like
	// a token's, within a minute of drift.
	if err := jws.ValidateTime(now, time.Minute, false); err != nil {
		return bad(outcomeSignature, "%w", err)
	}
	inner, ok := jws.Claims()["token_introspection"].(map[string]any)
	if !ok {
		return bad(outcomeInvalid, "token_introspection is missing or not an object")
	}
	tok, err := fromMembers(inner)
	if err != nil && !errors.Is(err, ErrInactive) {
		return bad(outcomeInvalid, "token_introspection: %w", err)
	}
	return tok, err
}
