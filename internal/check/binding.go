package check

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// checkProof verifies the request's DPoP proof for cfg (RFC 9449 §4.3).
// accessToken is the token the proof must bind by ath, "" at a token
// endpoint. tokenEndpoint selects the error shapes of an authorization
// server (400 JSON) over those of a resource server (401 challenge). Its
// jti is spent later, by spendProof, once everything else the proof is for
// holds: a request that fails on its token or binding must not cost an
// entry of the replay store, or any token holder could fill it with proofs
// of fresh keys.
func (s *Server) checkProof(ctx context.Context, cfg *policy.DPoP, r *httpRequest, accessToken string, tokenEndpoint bool, tr *trace) (*dpop.Proof, *decision) {
	proofKind, nonceKind := denyDPoPProof, denyDPoPNonce
	if tokenEndpoint {
		proofKind, nonceKind = denyTokenDPoPProof, denyTokenDPoPNonce
	}
	fail := func(kind denyKind, reason, format string, args ...any) (*dpop.Proof, *decision) {
		if tr != nil {
			tr.add("DPoP proof", false, format, args...)
		}
		d := deny(kind, reason)
		if kind == nonceKind {
			d.nonce = s.nonces.Current()
		}
		return nil, d
	}
	header, ok := r.Header("dpop")
	if !ok {
		return fail(proofKind, ReasonDPoPMissing, "no DPoP header")
	}
	opts := cfg.Proof
	opts.AccessToken = accessToken
	if cfg.Nonce {
		opts.Nonces = s.nonces
	}
	now := s.cfg.Now()
	p, err := dpop.Verify(header, dpop.Request{Method: r.Method, Scheme: r.scheme, Authority: r.authority, Path: r.Path}, &opts, now)
	if err != nil {
		reason := proofReason(err)
		if reason == ReasonDPoPNonce {
			return fail(nonceKind, reason, "%v; a fresh nonce is sent in DPoP-Nonce", err)
		}
		return fail(proofKind, reason, "%v", err)
	}
	if tr != nil {
		tr.add("DPoP proof", true, "key %s, htm and htu match, iat %s old", p.JKT, now.Sub(p.IssuedAt).Round(time.Second))
	}
	return p, nil
}

// spendProof claims a verified proof's jti once. It returns nil, the deny
// of a replay (or of a full or unavailable store), or with ReplayFailOpen
// an allow marker when the store is down.
func (s *Server) spendProof(ctx context.Context, cfg *policy.DPoP, p *dpop.Proof, tokenEndpoint bool, tr *trace) *decision {
	kind := denyDPoPProof
	if tokenEndpoint {
		kind = denyTokenDPoPProof
	}
	d := s.claimJTI(ctx, proofNamespace+p.JKT, p.JTI, p.Until(&cfg.Proof), kind, ReasonDPoPReplayed)
	if tr != nil {
		if d == nil || d.allow {
			tr.add("DPoP proof jti", true, "claimed once")
		} else {
			tr.add("DPoP proof jti", false, "not claimed: %s", d.reason)
		}
	}
	return d
}

// proofReason maps a dpop error to its reason code.
func proofReason(err error) string {
	switch {
	case errors.Is(err, dpop.ErrAlgorithm):
		return ReasonDPoPAlgorithm
	case errors.Is(err, dpop.ErrSignature):
		return ReasonDPoPSignature
	case errors.Is(err, dpop.ErrMethod):
		return ReasonDPoPMethod
	case errors.Is(err, dpop.ErrURI):
		return ReasonDPoPURI
	case errors.Is(err, dpop.ErrStale):
		return ReasonDPoPStale
	case errors.Is(err, dpop.ErrFuture):
		return ReasonDPoPFuture
	case errors.Is(err, dpop.ErrATH):
		return ReasonDPoPATH
	case errors.Is(err, dpop.ErrNonce):
		return ReasonDPoPNonce
	}
	return ReasonDPoPInvalid
}

// binding checks the token's confirmation claim (RFC 7800 cnf) against what
// this request proved: cnf.jkt needs a DPoP proof by that key (RFC 9449
// §6.1), cnf.x5t#S256 the client certificate of that thumbprint (RFC 8705
// §3.1). A bound token whose binding was not verified is refused, whatever
// scheme it came in: binding exists so that a stolen token is useless. A
// cnf member we cannot verify is refused too, and so is a proof beside a
// token bound to no key (RFC 9449 §7.1: the key must match the token's).
func binding(tok *token.Token, proof *dpop.Proof, r *httpRequest, tr *trace) string {
	reason, detail := bindingReason(tok, proof, r)
	if tr != nil {
		tr.add("binding", reason == "", "%s", detail)
	}
	return reason
}

func bindingReason(tok *token.Token, proof *dpop.Proof, r *httpRequest) (string, string) {
	raw, ok := tok.Claim("cnf")
	if !ok {
		if proof != nil {
			return ReasonDPoPUnbound, "a DPoP proof came with a token that has no cnf.jkt"
		}
		return "", "the token is not sender-constrained (no cnf)"
	}
	cnf, ok := raw.(map[string]any)
	if !ok || len(cnf) == 0 {
		return ReasonCnfUnsupported, "cnf is not a non-empty object"
	}
	for name, v := range cnf {
		if _, str := v.(string); !str || (name != "jkt" && name != "x5t#S256") {
			return ReasonCnfUnsupported, "cnf has a member that cannot be verified here (only string jkt and x5t#S256 can)"
		}
	}
	jkt, keyBound := cnf["jkt"].(string)
	if keyBound {
		switch {
		case proof == nil:
			return ReasonBoundNoProof, "cnf.jkt binds the token to a key, and no DPoP proof was verified"
		case subtle.ConstantTimeCompare([]byte(proof.JKT), []byte(jkt)) != 1:
			return ReasonDPoPKeyMismatch, "the DPoP proof's key is not the key cnf.jkt names"
		}
	} else if proof != nil {
		return ReasonDPoPUnbound, "a DPoP proof came with a token that has no cnf.jkt"
	}
	x5t, certBound := cnf["x5t#S256"].(string)
	if certBound {
		pc := r.peerCertificate()
		switch {
		case pc == nil:
			return ReasonCertMissing, "cnf.x5t#S256 binds the token to a client certificate, and Envoy forwarded none"
		case pc.err != nil:
			return ReasonCertInvalid, pc.err.Error()
		case subtle.ConstantTimeCompare([]byte(pc.thumbprint), []byte(x5t)) != 1:
			return ReasonCertMismatch, "the client certificate is not the one cnf.x5t#S256 names"
		}
	}
	// Constants, so an allow of a bound token builds no text for a trace
	// it does not have.
	switch {
	case keyBound && certBound:
		return "", "bound to the DPoP key and the client certificate, verified on this request"
	case keyBound:
		return "", "bound to the DPoP key, verified on this request"
	}
	return "", "bound to the client certificate, verified on this request"
}

// peerSVID checks that the caller's X.509-SVID (the forwarded client
// certificate) names the same SPIFFE ID as the verified JWT-SVID, so a
// JWT-SVID is usable only over its own workload's mTLS connection.
func peerSVID(spiffeID string, r *httpRequest, tr *trace) string {
	reason, detail := "", ""
	pc := r.peerCertificate()
	switch {
	case spiffeID == "":
		reason, detail = ReasonPeerSVID, "the token is not a JWT-SVID"
	case pc == nil:
		reason, detail = ReasonCertMissing, "Envoy forwarded no client certificate"
	case pc.err != nil:
		reason, detail = ReasonCertInvalid, pc.err.Error()
	case len(pc.cert.URIs) != 1 || pc.cert.URIs[0].String() != spiffeID:
		reason, detail = ReasonPeerSVID, "the client certificate's URI SAN is not the SVID's sub"
	}
	if tr != nil {
		if reason == "" {
			detail = "the peer's X.509-SVID is " + spiffeID
		}
		tr.add("peer X.509-SVID", reason == "", "%s", detail)
	}
	return reason
}

// assertionTyping applies explicit typing to a client assertion
// (draft-ietf-oauth-rfc7523bis): typ absent, JWT or
// client-authentication+jwt, any other type refused, so an access token
// (at+jwt), a DPoP proof or a security event token can never pass as a
// client's credential. strict requires the explicit type and refuses the
// claims only an access token carries. JWT-SVIDs keep the SVID standard's
// typing (JWT or JOSE), checked with the other SVID rules.
func assertionTyping(tok *token.Token, is *policy.Issuer, strict bool) (string, string) {
	h := tok.Header
	switch {
	case is.IssuesSVIDs():
	case h.TypeIs("client-authentication+jwt"):
	case !h.TypeIs("") && !h.TypeIs("jwt"):
		return ReasonTokenType, "typ " + tok.Header.Typ + " is not a client assertion's"
	case strict:
		return ReasonTokenType, "strict_typing requires typ client-authentication+jwt"
	}
	if strict {
		for _, c := range []string{"scope", "scp", "client_id"} {
			if tok.HasClaim(c) {
				return ReasonAccessTokenClaims, "the assertion carries " + c + ", a claim of access tokens"
			}
		}
	}
	return "", ""
}

// accessTokenTyping keeps other JWTs from passing as access tokens. An OIDC
// ID token (nonce, at_hash) is refused at every bearer rule: it proves a
// login to a client, not a grant to an API. typ may be absent, JWT, JOSE or
// at+jwt; the RFC 9068 profile requires at+jwt and the claims §2.2 makes
// mandatory, for ordinary issuers (JWT-SVIDs keep the JWT-SVID rules).
func accessTokenTyping(tok *token.Token, is *policy.Issuer, rfc9068 bool) (string, string) {
	h := tok.Header
	if !h.TypeIs("") && !h.TypeIs("jwt") && !h.TypeIs("jose") && !h.TypeIs("at+jwt") {
		return ReasonTokenType, "typ " + h.Typ + " is neither an access token's nor a JWT's"
	}
	for _, c := range []string{"nonce", "at_hash"} {
		if tok.HasClaim(c) {
			return ReasonIDTokenClaims, "the token carries " + c + ": an OIDC ID token, not an access token"
		}
	}
	if !rfc9068 || is.IssuesSVIDs() {
		return "", ""
	}
	if !h.TypeIs("at+jwt") {
		return ReasonTokenType, "profile rfc9068 requires typ at+jwt"
	}
	// sub, iat and jti are typed by the token parser; client_id must be a
	// non-empty string too (RFC 9068 §2.2).
	if !tok.HasSubject || !tok.HasIssuedAt || !tok.HasID {
		return ReasonProfileClaim, "profile rfc9068 requires sub, iat and jti"
	}
	if id, ok := tok.ClaimString("client_id"); !ok || id == "" {
		return ReasonProfileClaim, "profile rfc9068 requires client_id, a non-empty string"
	}
	return "", ""
}
