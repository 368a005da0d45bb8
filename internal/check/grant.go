package check

import (
	"context"
	"strings"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// grantTypeJWTBearer is RFC 7523 §2.1's grant type: the `assertion`
// parameter is a JWT naming the resource owner the client acts for.
const grantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// grantParams reports whether a form carries an RFC 7523 §2.1 grant, or
// half of one.
func grantParams(form map[string]string) bool {
	return form["grant_type"] == grantTypeJWTBearer || hasParam(form, "assertion")
}

// grantRequest decides a token request at a rule with authorization_grant,
// or one carrying a grant at a client-assertion rule without it. clientAuth
// is whether the body carries client assertion parameters.
//
// The grant is required when grant_type is jwt-bearer; at a rule with
// client_assertion too, other grant types need only the client assertion,
// so one rule serves a token endpoint that takes several grants. A rule
// with authorization_grant alone takes only jwt-bearer grants; the client
// authenticates to the authorization server as it chooses (Basic or
// client_secret in the body pass through), but a client assertion there
// would go unverified, so it is refused.
func (s *Server) grantRequest(ctx context.Context, rule *policy.Rule, form map[string]string, clientAuth bool, r *httpRequest, tr *trace) *decision {
	ca, ag := rule.ClientAssertion, rule.AuthorizationGrant
	jwtBearer := form["grant_type"] == grantTypeJWTBearer
	raw, hasAssertion := form["assertion"]
	fail := func(kind denyKind, reason, format string, args ...any) *decision {
		if tr != nil {
			tr.add("authorization grant", false, format, args...)
		}
		return deny(kind, reason)
	}
	switch {
	case ag == nil:
		return fail(denyInvalidRequest, ReasonGrantNotAllowed, "the request carries an RFC 7523 grant, and the rule has no authorization_grant to verify it")
	case jwtBearer && raw == "":
		return fail(denyInvalidRequest, ReasonGrantMalformed, "grant_type is jwt-bearer without an assertion parameter")
	case hasAssertion && !jwtBearer:
		return fail(denyInvalidRequest, ReasonGrantMalformed, "an assertion parameter without grant_type %s", grantTypeJWTBearer)
	case !jwtBearer && ca != nil && clientAuth:
		return s.clientAssertion(ctx, ca, form, r, tr)
	case !jwtBearer && ca != nil:
		return fail(denyInvalidClient, ReasonMissing, "the rule requires a client assertion; the request carries none")
	case !jwtBearer:
		return fail(denyInvalidRequest, ReasonGrantRequired, "the rule takes only grant_type %s", grantTypeJWTBearer)
	case ca == nil && clientAuth:
		return fail(denyInvalidRequest, ReasonAssertionNotAccepted, "a client assertion at a rule without client_assertion would reach the authorization server unverified")
	case ca == nil && r.hasAuthorization && !isBasic(r.authorization):
		return fail(denyInvalidRequest, ReasonTwoCredentials, "an Authorization value other than Basic beside the grant")
	case ca == nil && (hasParam(form, "access_token") || queryNames(r.Query, []string{"access_token"}, true)):
		return fail(denyInvalidRequest, ReasonTwoCredentials, "an access token beside the grant")
	}
	var d *decision
	if ca != nil {
		if !clientAuth {
			return fail(denyInvalidClient, ReasonMissing, "the rule requires a client assertion beside the grant; the request carries none")
		}
		// The client first: an unauthenticated client learns nothing of
		// the user's grant.
		if d = s.clientAssertion(ctx, ca, form, r, tr); !d.allow {
			return d
		}
	} else {
		d = &decision{allow: true, reason: ReasonAllowed, vars: &policy.Vars{Credential: "authorization_grant", Form: form}}
	}
	g, gd := s.verifyGrant(ctx, ag, raw, tr)
	if gd != nil {
		gd.clientID, gd.spiffeID = d.clientID, d.spiffeID
		if d.issuer != nil {
			gd.issuer = d.issuer
		}
		return gd
	}
	if d.issuer == nil {
		d.issuer = g.issuer
	}
	if g.reason != "" && d.reason == ReasonAllowed {
		d.reason = g.reason
	}
	d.vars.Grant = g.vars
	return d
}

type grant struct {
	issuer *policy.Issuer
	vars   map[string]any
	// reason is set when the grant passed on a degraded path (the replay
	// store down under --replay-fail-open).
	reason string
}

// verifyGrant verifies an RFC 7523 §2.1 grant with a client assertion's
// rules (RFC 7523 §3): signature, issuer, a single audience of the rule's,
// the lifetime bound, and a jti used once. Its sub is the resource owner:
// it is not mapped through client_ids and never becomes the client id.
func (s *Server) verifyGrant(ctx context.Context, ag *policy.ClientAssertion, raw string, tr *trace) (*grant, *decision) {
	now := s.cfg.Now()
	v, reason, ours := s.verify(ctx, &ag.Credential, raw, now, false, tr)
	if reason != "" {
		return nil, s.verifyDeny(v, reason, ours, denyInvalidGrant)
	}
	tok, is := v.tok, v.issuer
	fail := func(reason, format string, args ...any) (*grant, *decision) {
		if tr != nil {
			tr.add("authorization grant", false, format, args...)
		}
		d := deny(denyInvalidGrant, reason)
		d.issuer = is
		return nil, d
	}
	if why := grantTyping(tok); why != "" {
		return fail(ReasonTokenType, "%s", why)
	}
	if len(tok.Audience) != 1 || !ag.HasAudience(tok.Audience[0]) {
		return fail(ReasonAudience, "the grant's aud %q is not a single audience of the rule's", tok.Audience)
	}
	if !tok.HasSubject || tok.Subject == "" {
		return fail(ReasonSubject, "the grant has no sub naming its user")
	}
	exp := tok.ExpiryTime()
	if exp.Sub(now) > ag.MaxLifetime || (tok.HasIssuedAt && exp.Sub(tok.IssuedAtTime()) > ag.MaxLifetime) {
		return fail(ReasonLifetime, "the grant lives longer than authorization_grant.max_lifetime of %s", ag.MaxLifetime)
	}
	g := &grant{issuer: is}
	if ag.ReplayProtected(is) {
		if !tok.HasID || tok.ID == "" {
			return fail(ReasonJTIMissing, "the grant has no jti, and replay protection is on")
		}
		// The namespace is the client assertions' one: a JWT spent as
		// one of them is spent as the other too.
		if d := s.claimJTI(ctx, replayNamespace(tok, is), tok.ID, exp.Add(is.ClockSkew), denyInvalidGrant, ReasonReplayed); d != nil {
			d.issuer = is
			if !d.allow {
				if tr != nil {
					tr.add("authorization grant", false, "jti %q: %s", tok.ID, d.reason)
				}
				return nil, d
			}
			g.reason = d.reason
		}
	}
	if tr != nil {
		tr.add("authorization grant", true, "aud %q, user (sub) %q, lifetime within %s, replay protected: %v", tok.Audience[0], tok.Subject, ag.MaxLifetime, ag.ReplayProtected(is))
	}
	iss := ""
	if tok.HasIssuer {
		iss = tok.Issuer
	}
	g.vars = map[string]any{"sub": tok.Subject, "iss": iss, "issuer": is.Name, "claims": tok.Claims()}
	return g, nil
}

// grantTyping refuses JWTs of another kind used as a grant: a client
// assertion (client-authentication+jwt), whose sub is a client, and access
// or ID tokens. No explicit type is defined for grants, so typ may be
// absent or JWT.
func grantTyping(tok *token.Token) string {
	h := tok.Header
	if !h.TypeIs("") && !h.TypeIs("jwt") {
		return "typ " + h.Typ + " is not an authorization grant's (absent or JWT)"
	}
	return ""
}

// isBasic reports whether an Authorization value is in the Basic scheme
// (client_secret_basic), split at any whitespace as frameworks do.
func isBasic(authorization string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(authorization, " \t"), " ")
	name, _, _ = strings.Cut(name, "\t")
	return strings.EqualFold(name, "basic")
}
