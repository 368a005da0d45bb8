package check

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"github.com/extauthz/extauthz/internal/policy"
)

// authenticate finds the request's credential, checks that the request
// carries exactly one, and verifies it for rule. A public rule (neither
// credential) authenticates every request.
func (s *Server) authenticate(ctx context.Context, rule *policy.Rule, r *httpRequest, tr *trace) *decision {
	ca, br := rule.ClientAssertion, rule.Bearer
	if ca == nil && br == nil && rule.AuthorizationGrant == nil {
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
	case r.partialBody && (ca != nil || rule.AuthorizationGrant != nil || r.body != ""):
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
	case bearer && br != nil && !br.AllowCredentialParams:
		// The folded search finds the exact names too: they fold to
		// themselves.
		if where := hiddenCredential(r, form, mediaType); where != "" {
			if tr != nil {
				tr.add("request form", false, "a credential parameter in the %s beside the token in Authorization", where)
			}
			return deny(denyInvalidRequest, ReasonTwoCredentials)
		}
	case bearer && (formNames(form, credentialParams, false) || queryNames(r.Query, credentialParams, false)):
		// Exact names stay refused where the rule opts out of the folded
		// search, or takes no bearer token at all.
		if tr != nil {
			tr.add("request form", false, "a credential parameter beside the token in Authorization")
		}
		return deny(denyInvalidRequest, ReasonTwoCredentials)
	}
	switch {
	case bearerMalformed:
		return deny(denyInvalidRequest, ReasonMalformedReq)
	case rule.AuthorizationGrant != nil || ca != nil && grantParams(form):
		return s.grantRequest(ctx, rule, form, assertion, r, tr)
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
