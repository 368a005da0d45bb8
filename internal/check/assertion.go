package check

import (
	"context"
	"errors"
	"time"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/token"
)

// clientAssertion verifies an RFC 7523 client assertion (RFC 7521 §4.2
// request rules, RFC 7523 §3 token rules).
func (s *Server) clientAssertion(ctx context.Context, ca *policy.ClientAssertion, form map[string]string, r *httpRequest, tr *trace) *decision {
	typ, hasType := form["client_assertion_type"]
	raw := form["client_assertion"]
	switch {
	case !hasType || raw == "":
		if tr != nil {
			tr.add("client_assertion_type", false, "client_assertion and client_assertion_type are both required")
		}
		return deny(denyInvalidRequest, ReasonMalformedReq)
	case typ != assertionTypeJWT && typ != assertionTypeSPIFFE:
		if tr != nil {
			tr.add("client_assertion_type", false, "%q is neither %s nor %s", typ, assertionTypeJWT, assertionTypeSPIFFE)
		}
		return deny(denyInvalidClient, ReasonAssertionType)
	}
	now := s.checkNow(r)
	v, reason, ours := s.verify(ctx, &ca.Credential, raw, now, false, tr)
	if reason != "" {
		return s.verifyDeny(v, reason, ours, denyInvalidClient)
	}
	tok, is := v.tok, v.issuer
	d := &decision{issuer: is, spiffeID: v.spiffeID}
	fail := func(reason string) *decision {
		if tr != nil {
			tr.add("client assertion", false, "%s", reason)
		}
		d.kind, d.reason = denyInvalidClient, reason
		return d
	}
	// draft-ietf-oauth-spiffe-client-auth: the jwt-spiffe type carries a
	// JWT-SVID, so only a JWT-SVID issuer may have verified it.
	if typ == assertionTypeSPIFFE && !is.IssuesSVIDs() {
		return fail(ReasonAssertionType)
	}
	if reason, why := assertionTyping(tok, is, ca.StrictTyping); reason != "" {
		if tr != nil {
			tr.add("typing", false, "%s", why)
		}
		return fail(reason)
	}
	// rfc7523bis: a single audience, so an assertion minted for one server
	// cannot be replayed at another that also appears in a list.
	if len(tok.Audience) != 1 || !ca.HasAudience(tok.Audience[0]) {
		return fail(ReasonAudience)
	}
	clientID, ok := assertionClient(tok, is)
	if !ok {
		return fail(ReasonSubject)
	}
	d.clientID = clientID
	if id, ok := form["client_id"]; ok && id != clientID {
		return fail(ReasonClientIDParam)
	}
	exp := tok.ExpiryTime()
	if exp.Sub(now) > ca.MaxLifetime || (tok.HasIssuedAt && exp.Sub(tok.IssuedAtTime()) > ca.MaxLifetime) {
		if tr != nil {
			life := exp.Sub(now)
			if tok.HasIssuedAt {
				life = max(life, exp.Sub(tok.IssuedAtTime()))
			}
			tr.add("lifetime", false, "the assertion lives %s, over this rule's client_assertion.max_lifetime of %s; raise max_lifetime if its issuer mints assertions that live this long (an hour-long JWT-SVID needs 3600s or more)", life.Round(time.Second), ca.MaxLifetime)
		}
		return fail(ReasonLifetime)
	}
	if ca.PeerSVID {
		if reason := peerSVID(v.spiffeID, r, tr); reason != "" {
			return fail(reason)
		}
	}
	// The proof is checked before the assertion's jti is spent, so a client
	// told use_dpop_nonce may retry with the same assertion (RFC 9449 §8).
	var proof *dpop.Proof
	if ca.DPoP != nil {
		if _, sent := r.Header("dpop"); sent || ca.DPoP.Required {
			p, pd := s.checkProof(ctx, ca.DPoP, r, "", true, tr)
			if pd != nil {
				pd.issuer, pd.clientID, pd.spiffeID = is, d.clientID, d.spiffeID
				return pd
			}
			proof = p
		}
		d.nonce = s.nonceFor(ca.DPoP)
	}
	if ca.ReplayProtected(is) {
		if !tok.HasID || tok.ID == "" {
			return fail(ReasonJTIMissing)
		}
		if r := s.claimJTI(ctx, replayNamespace(tok, is), tok.ID, exp.Add(is.ClockSkew), denyInvalidClient, ReasonReplayed); r != nil {
			r.issuer, r.clientID, r.spiffeID = is, d.clientID, d.spiffeID
			if r.allow {
				d.reason = r.reason
			} else {
				return r
			}
		}
	}
	// The proof's jti last: only a request whose assertion passed may
	// spend an entry of the replay store.
	if proof != nil {
		if pd := s.spendProof(ctx, ca.DPoP, proof, true, tr); pd != nil {
			pd.issuer, pd.clientID, pd.spiffeID = is, d.clientID, d.spiffeID
			if !pd.allow {
				return pd
			}
			d.reason = pd.reason
		}
	}
	if tr != nil {
		tr.add("client assertion", true, "aud %q, client id %q, lifetime within %s, replay protected: %v", tok.Audience[0], clientID, ca.MaxLifetime, ca.ReplayProtected(is))
	}
	d.allow = true
	if d.reason == "" {
		d.reason = ReasonAllowed
	}
	d.vars = &policy.Vars{
		Claims:     tok.Claims(),
		ClientID:   clientID,
		SpiffeID:   v.spiffeID,
		Scopes:     assertionScopes(tok.Claims()),
		Issuer:     is.Name,
		IssuerVars: v.issuerVars,
		Credential: "client_assertion",
		Form:       form,
	}
	if proof != nil {
		d.vars.DPoPJKT = proof.JKT
	}
	return d
}

// assertionClient maps an assertion's sub to the client id: through
// client_ids when it names the sub; else sub itself when it equals iss (RFC
// 7523 self-signed), or when it is the verified SPIFFE ID of a JWT-SVID
// issuer that has no client_ids to consult.
func assertionClient(tok *token.Token, is *policy.Issuer) (string, bool) {
	if !tok.HasSubject || tok.Subject == "" {
		return "", false
	}
	if id, ok := is.ClientIDs[tok.Subject]; ok {
		return id, true
	}
	if tok.HasIssuer && tok.Subject == tok.Issuer {
		return tok.Subject, true
	}
	if is.IssuesSVIDs() && len(is.ClientIDs) == 0 {
		return tok.Subject, true
	}
	return "", false
}

// Replay namespaces are what a single-use jti is unique within. They are
// named by what the verified token proves, never by the policy, so that no
// issuer entry renamed in a reload, and no second entry with the same iss,
// can reopen a used jti. The spellings are stable across versions: a
// rolling upgrade sharing Redis keeps its memory.
const (
	nsIssuer = "iss:"    // + the verified iss
	nsSPIFFE = "spiffe:" // + the trust domain of an SVID without iss
	// proofNamespace + the RFC 7638 thumbprint of a DPoP proof's key: a
	// proof is issued by its own key. '#' makes every key's namespace one
	// group of the replay store, bounded together.
	proofNamespace = "dpop#"
)

// replayNamespace is a client assertion's namespace: its verified iss, or
// for a JWT-SVID without one, its SPIFFE trust domain (SPIFFE IDs are unique
// within it).
func replayNamespace(tok *token.Token, is *policy.Issuer) string {
	if tok.HasIssuer {
		return nsIssuer + tok.Issuer
	}
	return nsSPIFFE + is.TrustDomain
}

// claimJTI records the jti once in namespace. It returns nil when the claim succeeded, a deny of kind and
// reason for a replay, another deny, or (with ReplayFailOpen) an allow
// marker when the store is down.
func (s *Server) claimJTI(ctx context.Context, namespace, jti string, until time.Time, kind denyKind, reason string) *decision {
	err := s.cfg.Replay.Claim(ctx, namespace, jti, until)
	switch {
	case err == nil:
		s.cfg.Metrics.replayClaim("ok")
		return nil
	case errors.Is(err, replay.ErrReplayed):
		s.cfg.Metrics.replayClaim("replayed")
		return deny(kind, reason)
	case errors.Is(err, replay.ErrFull):
		s.cfg.Metrics.replayFull(namespace, err)
		// A flood is counted in full by the metric; the log gets one line
		// a second, naming the bound that was hit.
		if now := s.cfg.Now().Unix(); s.fullLogged.Swap(now) != now {
			s.cfg.Logger.Warn("check: replay store full; denying single-use tokens until entries expire", "namespace", replayNamespaceLabel(namespace), "error", err)
		}
		return deny(denyUnavailable, ReasonReplayFull)
	}
	s.cfg.Metrics.replayClaim("error")
	if s.cfg.ReplayFailOpen {
		s.cfg.Logger.Error("check: replay store unavailable; allowing WITHOUT replay protection (--replay-fail-open)", "namespace", namespace, "error", err)
		s.cfg.Metrics.replayFailOpen()
		return &decision{allow: true, reason: ReasonReplayDown}
	}
	s.cfg.Logger.Error("check: replay store unavailable; denying", "namespace", namespace, "error", err)
	return deny(denyUnavailable, ReasonReplayDown)
}
