package check

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/introspect"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// refreshTokenURN is RFC 8693's token type of refresh tokens.
const refreshTokenURN = "urn:ietf:params:oauth:token-type:refresh_token"

// verifyBearer is verify for a bearer rule, which may have one introspection
// issuer (policy refuses two). An opaque token carries no iss to find its
// issuer by, so the token's shape decides: one that is not a compact JWS
// (not three dot-separated segments, or three that do not parse as one) is
// introspected at the rule's introspection issuer; a JWS is verified
// locally by its iss as always, unless that iss is the introspection
// issuer's and the issuer has no key source, when it is introspected too.
// Rules without an introspection issuer go straight to verify.
func (s *Server) verifyBearer(ctx context.Context, br *policy.Bearer, raw string, now time.Time, r *httpRequest, tr *trace) (*verified, string, bool) {
	is := br.Introspector()
	if is == nil {
		return s.verifyIn(ctx, &br.Credential, raw, now, true, r, tr)
	}
	if strings.Count(raw, ".") == 2 {
		if !is.HasKeys() {
			if t, err := token.Parse(raw, s.cfg.TokenLimits); err == nil && t.HasIssuer && t.Issuer == is.Iss {
				return s.introspect(ctx, is, raw, now, tr)
			}
		}
		v, reason, ours := s.verifyIn(ctx, &br.Credential, raw, now, true, r, tr)
		if reason != ReasonMalformedToken {
			return v, reason, ours
		}
	}
	return s.introspect(ctx, is, raw, now, tr)
}

// introspect asks the issuer's endpoint (or its cache) about an opaque
// token. An active answer becomes a verified token whose claims are the
// response's members, so the rule's audience, scope, binding and CEL checks
// run on it exactly as on a JWT's. It is never put in the JWT token cache:
// the introspection client caches its own answers, for no longer than they
// say they hold.
func (s *Server) introspect(ctx context.Context, is *policy.Issuer, raw string, now time.Time, tr *trace) (*verified, string, bool) {
	tok, err := is.Introspect.Introspect(ctx, raw, now)
	v := &verified{tok: tok, issuer: is, introspected: true}
	switch {
	case errors.Is(err, introspect.ErrInactive):
		if tr != nil {
			tr.add("introspection", false, "issuer %q says the token is not active", is.Name)
		}
		return v, ReasonInactive, false
	case err != nil:
		// The client logs an outage once; a line per Check would drown it.
		if tr != nil {
			tr.add("introspection", false, "%v", err)
		}
		s.cfg.Logger.Debug("check: introspection unavailable", "issuer", is.Name, "error", err)
		return v, ReasonIntrospectionDown, true
	}
	if tr != nil {
		tr.add("introspection", true, "issuer %q says the token is active", is.Name)
	}
	// RFC 7662 makes iss optional; when given it must be the issuer asked.
	if tok.HasIssuer && tok.Issuer != is.Iss {
		if tr != nil {
			tr.add("issuer", false, "the response's iss %q is not %q", tok.Issuer, is.Iss)
		}
		return v, ReasonIssuer, false
	}
	// Many endpoints answer for refresh tokens too, token_type_hint or
	// not; one is a grant to the client, never a credential for an API.
	if tt, _ := tok.ClaimString("token_type"); strings.EqualFold(tt, "refresh_token") || strings.EqualFold(tt, refreshTokenURN) {
		if tr != nil {
			tr.add("token type", false, "the endpoint says this is a refresh token")
		}
		return v, ReasonTokenType, false
	}
	// exp is optional too; without it the answer holds for cache_ttl.
	if err := tok.ValidateTime(now, is.ClockSkew, false); err != nil {
		if tr != nil {
			tr.add("time claims", false, "%v", err)
		}
		return v, tokenReason(err), false
	}
	return v, "", false
}
