package check

import (
	"context"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// bearer verifies an access token that came in the Bearer scheme (RFC 6750)
// or the DPoP scheme (RFC 9449): an RFC 9068 access token or a JWT-SVID.
// br.DPoP is set when scheme is schemeDPoP.
func (s *Server) bearer(ctx context.Context, br *policy.Bearer, raw string, scheme tokenScheme, r *httpRequest, tr *trace) *decision {
	if scheme == schemeBearer && br.DPoP != nil && br.DPoP.Required {
		if tr != nil {
			tr.add("scheme", false, "the rule requires DPoP-bound tokens; a Bearer token was sent")
		}
		d := deny(denyBearerInvalid, ReasonDPoPRequired)
		d.scheme = schemeDPoP
		return d
	}
	v, reason, ours := s.verifyBearer(ctx, br, raw, s.checkNow(r), r, tr)
	if reason != "" {
		d := s.verifyDeny(v, reason, ours, denyBearerInvalid)
		d.scheme = scheme
		return d
	}
	tok, is := v.tok, v.issuer
	d := r.newDecision()
	d.issuer, d.spiffeID, d.scheme, d.token = is, v.spiffeID, scheme, raw
	d.tokenSum, d.tokenSummed = v.sum, v.summed
	if reason, why := accessTokenTyping(tok, is, br.RFC9068); reason != "" && !v.introspected {
		if tr != nil {
			tr.add("typing", false, "%s", why)
		}
		d.kind, d.reason = denyBearerInvalid, reason
		return d
	}
	audOK := false
	for _, a := range tok.Audience {
		if br.HasAudience(a) {
			audOK = true
			break
		}
	}
	if !audOK {
		if tr != nil {
			tr.add("audience", false, "aud %q has none of %v", tok.Audience, br.Audiences)
		}
		d.kind, d.reason = denyBearerInvalid, ReasonAudience
		return d
	}
	if tr != nil {
		tr.add("audience", true, "aud %q", tok.Audience)
	}
	d.clientID = bearerClient(tok)
	var proof *dpop.Proof
	if scheme == schemeDPoP {
		p, pd := s.checkProof(ctx, br.DPoP, r, raw, false, tr)
		if pd != nil {
			pd.issuer, pd.clientID, pd.spiffeID, pd.scheme = is, d.clientID, d.spiffeID, scheme
			return pd
		}
		proof = p
	}
	if reason := binding(tok, proof, r, tr); reason != "" {
		d.kind, d.reason = denyBearerInvalid, reason
		return d
	}
	if br.PeerSVID {
		if reason := peerSVID(v.spiffeID, r, tr); reason != "" {
			d.kind, d.reason = denyBearerInvalid, reason
			return d
		}
	}
	// The proof's jti once the token and its binding hold.
	if proof != nil {
		if pd := s.spendProof(ctx, br.DPoP, proof, false, tr); pd != nil {
			pd.issuer, pd.clientID, pd.spiffeID, pd.scheme = is, d.clientID, d.spiffeID, scheme
			if !pd.allow {
				return pd
			}
			d.reason = pd.reason
		}
	}
	if br.DPoP != nil {
		d.nonce = s.nonceFor(br.DPoP)
	}
	if reason := stepUp(br.StepUp, tok, is, s.stepUpNow(br.StepUp), tr); reason != "" {
		d.kind, d.reason = denyStepUp, reason
		return d
	}
	scopes, ok := claimScopesIn(tok, r.scopeBuf())
	if !ok {
		if tr != nil {
			tr.add("scopes", false, "scope or scp breaks RFC 6749's scope grammar")
		}
		d.kind, d.reason = denyBearerInvalid, ReasonScopeMalformed
		return d
	}
	for _, want := range br.Scopes {
		if !contains(scopes, want) {
			if tr != nil {
				tr.add("scopes", false, "token scopes %v lack %q", scopes, want)
			}
			d.kind, d.reason = denyBearerScope, ReasonScope
			return d
		}
	}
	if tr != nil {
		tr.add("scopes", true, "token scopes %v include %v", scopes, br.Scopes)
	}
	d.allow = true
	if d.reason == "" {
		d.reason = ReasonAllowed
	}
	d.vars = r.newVars()
	*d.vars = policy.Vars{
		ClaimsOf:   tok,
		ClientID:   d.clientID,
		SpiffeID:   v.spiffeID,
		Scopes:     scopes,
		Issuer:     is.Name,
		IssuerVars: v.issuerVars,
		Credential: "bearer",
	}
	if proof != nil {
		d.vars.DPoPJKT = proof.JKT
	}
	return d
}

// bearerClient is the spec's client_id of an access token: client_id, else
// azp (OIDC), else "".
func bearerClient(claims token.ClaimReader) string {
	if s, ok := claims.ClaimString("client_id"); ok {
		return s
	}
	if s, ok := claims.ClaimString("azp"); ok {
		return s
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
