package check

import (
	"context"
	"errors"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/token"
)

// maxSPIFFEIDBytes is the SPIFFE ID standard's length limit for URIs.
const maxSPIFFEIDBytes = 2048

// authenticate finds the request's credential, checks that the request
// carries exactly one, and verifies it for rule. A public rule (neither
// credential) authenticates every request.
func (s *Server) authenticate(ctx context.Context, rule *policy.Rule, r *httpRequest, tr *trace) *decision {
	ca, br := rule.ClientAssertion, rule.Bearer
	if ca == nil && br == nil {
		if tr != nil {
			tr.add("credential", true, "public route: no credential required")
		}
		return &decision{allow: true, reason: ReasonPublicRoute, vars: &policy.Vars{}}
	}

	// The body matters for client assertions, and for bearer rules because a
	// token in the body beside the header is a second credential.
	var form map[string]string
	mediaType, multipleTypes := r.contentType()
	switch {
	case r.partialBody && (ca != nil || r.body != ""):
		return deny(denyInvalidRequest, ReasonPartialBody)
	case r.body == "":
	case multipleTypes:
		if tr != nil {
			tr.add("request form", false, "more than one Content-Type")
		}
		return deny(denyInvalidRequest, ReasonMalformedReq)
	case mediaType != formContentType:
	case len(r.body) > s.cfg.MaxBodyBytes:
		return deny(denyInvalidRequest, ReasonBodyTooLarge)
	default:
		params, err := parseForm(r.body)
		var dup *duplicateError
		switch {
		case errors.As(err, &dup):
			return deny(denyInvalidRequest, ReasonDuplicateParam)
		case err != nil:
			return deny(denyInvalidRequest, ReasonBadForm)
		}
		form = params
	}
	_, hasAssertion := form["client_assertion"]
	_, hasAssertionType := form["client_assertion_type"]
	assertion := hasAssertion || hasAssertionType

	var (
		bearerMalformed, basic bool
		raw                    string
		scheme                 tokenScheme
	)
	if r.hasAuthorization {
		// No credential scheme we accept has a comma in it, so a comma
		// means two Authorization headers, whichever way Envoy encoded
		// them: a 400 in both encodings alike.
		if strings.IndexByte(r.authorization, ',') >= 0 {
			if tr != nil {
				tr.add("authorization", false, "more than one Authorization header")
			}
			return deny(denyInvalidRequest, ReasonMalformedReq)
		}
		// Bound the work on an oversized header before any grammar check
		// or hash: it can only hold an oversized token.
		if len(r.authorization) > s.maxTokenBytes()+len("Bearer ") {
			if br != nil {
				return deny(denyBearerInvalid, ReasonMalformedToken)
			}
			return deny(denyInvalidRequest, ReasonMalformedReq)
		}
		raw, scheme, bearerMalformed = accessToken(r.authorization)
		// Frameworks split a scheme off at any whitespace, a tab too.
		name := r.authorization
		if i := strings.IndexFunc(name, unicode.IsSpace); i >= 0 {
			name = name[:i]
		}
		basic = strings.EqualFold(name, "basic")
	}

	// A DPoP-scheme token is an access token too: for the one-credential
	// rules it counts as a bearer token.
	bearer := scheme != schemeNone
	if tr != nil {
		tr.add("request form", true, "client assertion in body: %v; access token in Authorization: %v", assertion, bearer)
	}
	switch {
	case assertion && (basic || hasParam(form, "client_secret")):
		return deny(denyInvalidRequest, ReasonSecretAndAssert)
	case assertion && r.hasAuthorization:
		// Any Authorization value is a credential to some framework.
		return deny(denyInvalidRequest, ReasonTwoCredentials)
	case assertion && (hasParam(form, "access_token") || queryNames(r.Query, []string{"access_token"}, true)):
		// An access token beside the assertion is a second credential.
		return deny(denyInvalidRequest, ReasonTwoCredentials)
	case assertion && queryNames(r.Query, queryCredentialParams, true):
		if tr != nil {
			tr.add("request form", false, "client credentials in the query string (RFC 6749 §2.3.1)")
		}
		return deny(denyInvalidRequest, ReasonCredentialsInQuery)
	case bearer && (formNames(form, credentialParams, false) || queryNames(r.Query, credentialParams, false)):
		if tr != nil {
			tr.add("request form", false, "a credential parameter beside the token in Authorization")
		}
		return deny(denyInvalidRequest, ReasonTwoCredentials)
	case bearer && br != nil && !br.AllowCredentialParams:
		if where := hiddenCredential(r, form, mediaType); where != "" {
			if tr != nil {
				tr.add("request form", false, "a credential parameter in the %s beside the token in Authorization", where)
			}
			return deny(denyInvalidRequest, ReasonTwoCredentials)
		}
	}
	switch {
	case bearerMalformed:
		return deny(denyInvalidRequest, ReasonMalformedReq)
	case assertion && ca != nil:
		return s.clientAssertion(ctx, ca, form, r, tr)
	case bearer && br != nil && (scheme == schemeBearer || br.DPoP != nil):
		return s.bearer(ctx, br, raw, scheme, r, tr)
	}
	if tr != nil {
		tr.add("credential", false, "the rule requires %s; the request carries none it accepts", accepted(rule))
	}
	if br != nil {
		d := deny(denyBearerMissing, ReasonMissing)
		d.scheme = scheme
		return d
	}
	return deny(denyInvalidClient, ReasonMissing)
}

// accepted names the credentials a rule takes, for explanations.
func accepted(rule *policy.Rule) string {
	switch {
	case rule.ClientAssertion != nil && rule.Bearer != nil:
		return "a client assertion or a bearer token"
	case rule.ClientAssertion != nil:
		return "a client assertion"
	}
	return "a bearer token"
}

func hasParam(form map[string]string, name string) bool {
	_, ok := form[name]
	return ok
}

// verified is a token that passed signature and time checks for an issuer.
type verified struct {
	tok      *token.Token
	issuer   *policy.Issuer
	spiffeID string
	// keysErr is why the issuer's keys were unavailable.
	keysErr error
}

// verify parses raw and checks it against the credential's issuers: the
// issuer is found from the (unverified) iss or SPIFFE trust domain, its
// allow-list checked before any key is fetched, then the signature and the
// time claims. On failure it returns the reason and whether the cause is
// ours (keys unavailable: 503) rather than the token's.
func (s *Server) verify(ctx context.Context, cred *policy.Credential, raw string, now time.Time, cache bool, tr *trace) (*verified, string, bool) {
	var sum [32]byte
	if cache && s.tokens != nil {
		sum = digest(raw)
		if e := s.tokens.lookup(ctx, sum, cred); e != nil {
			if tr != nil {
				tr.add("token cache", true, "signature verified before by issuer %q; key still current", e.issuer.Name)
			}
			v := &verified{tok: e.tok, issuer: e.issuer, spiffeID: e.spiffeID}
			return v, s.validateTime(v, now, tr), false
		}
	}
	tok, err := token.Parse(raw, s.cfg.TokenLimits)
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
	is := cred.IssuerFor(tok.Issuer, tok.HasIssuer, td)
	if is == nil {
		if tr != nil {
			tr.add("issuer", false, "no issuer of the rule has iss %q (or takes sub's trust domain %q)", tok.Issuer, td)
		}
		return nil, ReasonIssuer, false
	}
	if tr != nil {
		tr.add("issuer", true, "issuer %q", is.Name)
	}
	v := &verified{tok: tok, issuer: is}
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
		s.cfg.Logger.Debug("check: issuer keys unavailable", "issuer", is.Name, "err", err)
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
	reason := s.validateTime(v, now, tr)
	if reason == "" && cache {
		s.tokens.add(sum, &cachedToken{tok: tok, issuer: is, key: key, spiffeID: v.spiffeID})
	}
	return v, reason, false
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
	switch tok.Header.Alg[0] {
	case 'R', 'E', 'P':
		if tok.Header.Alg == "EdDSA" {
			return ReasonAlgorithm
		}
	default:
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
	now := s.cfg.Now()
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
		if _, sent := r.Headers["dpop"]; sent || ca.DPoP.Required {
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
		Claims:     tok.Claims,
		ClientID:   clientID,
		SpiffeID:   v.spiffeID,
		Scopes:     assertionScopes(tok.Claims),
		Issuer:     is.Name,
		Credential: "client_assertion",
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
			s.cfg.Logger.Warn("check: replay store full; denying single-use tokens until entries expire", "namespace", replayNamespaceLabel(namespace), "err", err)
		}
		return deny(denyUnavailable, ReasonReplayFull)
	}
	s.cfg.Metrics.replayClaim("error")
	if s.cfg.ReplayFailOpen {
		s.cfg.Logger.Error("check: replay store unavailable; allowing WITHOUT replay protection (--replay-fail-open)", "namespace", namespace, "err", err)
		s.cfg.Metrics.replayFailOpen()
		return &decision{allow: true, reason: ReasonReplayDown}
	}
	s.cfg.Logger.Error("check: replay store unavailable; denying", "namespace", namespace, "err", err)
	return deny(denyUnavailable, ReasonReplayDown)
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
	v, reason, ours := s.verify(ctx, &br.Credential, raw, s.cfg.Now(), true, tr)
	if reason != "" {
		d := s.verifyDeny(v, reason, ours, denyBearerInvalid)
		d.scheme = scheme
		return d
	}
	tok, is := v.tok, v.issuer
	d := &decision{issuer: is, spiffeID: v.spiffeID, scheme: scheme}
	if reason, why := accessTokenTyping(tok, is, br.RFC9068); reason != "" {
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
	d.clientID = bearerClient(tok.Claims)
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
	scopes, ok := claimScopes(tok.Claims)
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
	d.vars = &policy.Vars{
		Claims:     tok.Claims,
		ClientID:   d.clientID,
		SpiffeID:   v.spiffeID,
		Scopes:     scopes,
		Issuer:     is.Name,
		Credential: "bearer",
	}
	if proof != nil {
		d.vars.DPoPJKT = proof.JKT
	}
	return d
}

// bearerClient is the spec's client_id of an access token: client_id, else
// azp (OIDC), else "".
func bearerClient(claims map[string]any) string {
	if s, ok := claims["client_id"].(string); ok {
		return s
	}
	if s, ok := claims["azp"].(string); ok {
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
