package check

import (
	"context"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// maxSPIFFEIDBytes is the SPIFFE ID standard's length limit for URIs.
const maxSPIFFEIDBytes = 2048

// verified is a token that passed signature and time checks for an issuer.
type verified struct {
	tok      *token.Token
	issuer   *policy.Issuer
	spiffeID string
	// issuerVars are the templated issuer's variables, nil otherwise.
	issuerVars map[string]string
	// keysErr is why the issuer's keys were unavailable.
	keysErr error
	// introspected tokens are the issuer's answer about an opaque token.
	introspected bool
	// sum is the token's token.DigestOf Sum when the token cache computed
	// it (summed).
	sum    [32]byte
	summed bool
}

// verify parses raw and checks it against the credential's issuers: the
// issuer is found from the (unverified) iss or SPIFFE trust domain, its
// allow-list checked before any key is fetched, then the signature and the
// time claims. On failure it returns the reason and whether the cause is
// ours (keys unavailable: 503) rather than the token's.
func (s *Server) verify(ctx context.Context, cred *policy.Credential, raw string, now time.Time, cache bool, tr *trace) (*verified, string, bool) {
	return s.verifyIn(ctx, cred, raw, now, cache, nil, tr)
}

// verifyIn is verify, with a token cache hit's result in r's scratch.
func (s *Server) verifyIn(ctx context.Context, cred *policy.Credential, raw string, now time.Time, cache bool, r *httpRequest, tr *trace) (*verified, string, bool) {
	var d token.Digest
	summed := cache && s.tokens != nil
	if summed {
		var e *cachedToken
		if e, d = s.tokens.find(ctx, raw, cred); e != nil {
			if tr != nil {
				tr.add("token cache", true, "signature verified before by issuer %q; key still current", e.issuer.Name)
			}
			v := r.newVerified()
			tok := r.newToken()
			e.tok.View(tok)
			*v = verified{tok: tok, issuer: e.issuer, issuerVars: e.issuerVars, sum: d.Sum, summed: true}
			if e.issuer.IssuesSVIDs() {
				v.spiffeID = tok.Subject
			}
			if reason := claimsBound(v, tr); reason != "" {
				return v, reason, false
			}
			return v, s.validateTime(v, now, tr), false
		}
	}
	// On a miss the token cache hashed the token (d), which the signature
	// check then reuses.
	var (
		tok *token.Token
		err error
	)
	if summed {
		tok, err = d.Parse(s.cfg.TokenLimits)
	} else {
		tok, err = token.Parse(raw, s.cfg.TokenLimits)
	}
	if err != nil {
		if tr != nil {
			tr.add("parse token", false, "%v", err)
		}
		return nil, tokenReason(err), false
	}
	if tr != nil {
		tr.add("parse token", true, "alg %s, kid %q, iss %q, sub %q", tok.Header.Alg, tok.Header.Kid, tok.Issuer, tok.Subject)
	}
	td := ""
	if tok.HasSubject && strings.HasPrefix(tok.Subject, "spiffe://") {
		if id, err := parseSPIFFEID(tok.Subject); err == nil {
			td = id.TrustDomain().Name()
		}
	}
	is, vars, varsOK := cred.MatchIssuer(tok.Issuer, tok.HasIssuer, td)
	if is != nil && !varsOK {
		// Refused before any key lookup: a tenant outside the policy must
		// not cost a JWKS fetch.
		if tr != nil {
			tr.add("issuer", false, "iss %q has the shape of issuer %q but a variable is not accepted", tok.Issuer, is.Name)
		}
		return &verified{tok: tok, issuer: is}, ReasonIssuerTenant, false
	}
	if is == nil {
		if tr != nil {
			tr.add("issuer", false, "no issuer of the rule has iss %q (or takes sub's trust domain %q)", tok.Issuer, td)
		}
		return nil, ReasonIssuer, false
	}
	if tr != nil {
		tr.add("issuer", true, "issuer %q", is.Name)
	}
	v := &verified{tok: tok, issuer: is, issuerVars: vars, sum: d.Sum, summed: summed}
	if !is.Allows(tok.Header.Alg) {
		if tr != nil {
			tr.add("algorithm", false, "%s is not in the issuer's allow-list %v", tok.Header.Alg, is.Algorithms)
		}
		return v, ReasonAlgorithm, false
	}
	if is.IssuesSVIDs() {
		if reason := svidRules(tok, is); reason != "" {
			if tr != nil {
				tr.add("JWT-SVID rules", false, "%s (trust domain %s)", reason, is.TrustDomain)
			}
			return v, reason, false
		}
		v.spiffeID = tok.Subject
		if tr != nil {
			tr.add("JWT-SVID rules", true, "SPIFFE ID %s", v.spiffeID)
		}
	}
	candidates, err := is.Keys.Keys(ctx, tok.Header.Kid)
	switch {
	case errors.Is(err, keys.ErrUnknownKID):
		if tr != nil {
			tr.add("keys", false, "%v", err)
		}
		return v, ReasonKID, false
	case err != nil:
		// The key plane logs each failed fetch once; a line per Check
		// during an outage would only drown it.
		if tr != nil {
			tr.add("keys", false, "%v", err)
		}
		s.cfg.Logger.Debug("check: issuer keys unavailable", "issuer", is.Name, "error", err)
		v.keysErr = err
		return v, ReasonKeysDown, true
	}
	key, err := tok.VerifiedBy(candidates)
	if err != nil {
		if tr != nil {
			tr.add("signature", false, "%v", err)
		}
		return v, tokenReason(err), false
	}
	if tr != nil {
		tr.add("signature", true, "verified with one of %d candidate keys", len(candidates))
	}
	// Claim binding reads claims, which only count once the signature holds.
	if reason := claimsBound(v, tr); reason != "" {
		return v, reason, false
	}
	reason := s.validateTime(v, now, tr)
	if reason == "" && cache {
		s.tokens.add(d.Sum, tok, is, key, vars)
	}
	return v, reason, false
}

// claimsBound checks a templated issuer's claim bindings (a tid claim equal
// to {tenant}).
func claimsBound(v *verified, tr *trace) string {
	if name, ok := v.issuer.Template.ClaimsBound(v.issuerVars, v.tok); !ok {
		if tr != nil {
			tr.add("issuer variables", false, "{%s} is %q but its bound claim differs", name, v.issuerVars[name])
		}
		return ReasonIssuerTenant
	}
	return ""
}

// validateTime checks exp (required), nbf and iat with the issuer's skew.
func (s *Server) validateTime(v *verified, now time.Time, tr *trace) string {
	if err := v.tok.ValidateTime(now, v.issuer.ClockSkew, true); err != nil {
		if tr != nil {
			tr.add("time claims", false, "%v", err)
		}
		return tokenReason(err)
	}
	if tr != nil {
		tr.add("time claims", true, "exp %d, now %d, skew %s", v.tok.Expiry, now.Unix(), v.issuer.ClockSkew)
	}
	return ""
}

// svidRules applies the JWT-SVID standard to a token of a SPIFFE issuer:
// RS/ES/PS only, `aud` present, `typ` JWT or JOSE if set, and `sub` a valid
// SPIFFE ID of the issuer's own trust domain.
func svidRules(tok *token.Token, is *policy.Issuer) string {
	a, ok := keys.LookupAlgorithm(tok.Header.Alg)
	if !ok || (a.Kind != keys.KindRSA && a.Kind != keys.KindRSAPSS && a.Kind != keys.KindECDSA) {
		return ReasonAlgorithm
	}
	if !tok.HasAudience {
		return ReasonAudience
	}
	if t := tok.Header.Typ; t != "" && t != "JWT" && t != "JOSE" {
		return ReasonTokenType
	}
	id, err := parseSPIFFEID(tok.Subject)
	if !tok.HasSubject || err != nil || id.TrustDomain().Name() != is.TrustDomain {
		return ReasonSubject
	}
	return ""
}

func parseSPIFFEID(s string) (spiffeid.ID, error) {
	if len(s) > maxSPIFFEIDBytes {
		return spiffeid.ID{}, errors.New("check: SPIFFE ID too long")
	}
	return spiffeid.FromString(s)
}

// verifyDeny builds the deny for a failed verify.
func (s *Server) verifyDeny(v *verified, reason string, ours bool, kind denyKind) *decision {
	if ours {
		kind = denyUnavailable
	}
	d := deny(kind, reason)
	if v != nil {
		d.issuer = v.issuer
		if ra, ok := keys.RetryAfter(v.keysErr); ok {
			d.retryAfter = int(math.Ceil(ra.Seconds()))
		}
	}
	return d
}
