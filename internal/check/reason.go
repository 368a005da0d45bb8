package check

import "net/http"

// Reason codes are stable and machine-readable: they appear in the decision's
// dynamic metadata, the decision log and metric labels. Never rename one.
const (
	ReasonAllowed         = "allowed"
	ReasonPublicRoute     = "public_route"
	ReasonDefaultAllow    = "default_allow"
	ReasonNoRule          = "no_rule_matched"
	ReasonUnknownRule     = "unknown_rule"
	ReasonMissing         = "credential_missing"
	ReasonMalformedReq    = "malformed_request"
	ReasonPartialBody     = "partial_body"
	ReasonBodyTooLarge    = "body_too_large"
	ReasonBadForm         = "bad_form_encoding"
	ReasonDuplicateParam  = "duplicate_parameter"
	ReasonTwoCredentials  = "multiple_credentials"
	ReasonSecretAndAssert = "assertion_with_client_secret"
	ReasonAssertionType   = "assertion_type_unsupported"
	ReasonClientIDParam   = "client_id_mismatch"
	ReasonMalformedToken  = "token_malformed"
	ReasonAlgorithm       = "algorithm_not_allowed"
	ReasonCritical        = "crit_unsupported"
	ReasonClaimType       = "claim_type_invalid"
	ReasonTokenType       = "token_type_invalid"
	ReasonIssuer          = "issuer_unknown"
	ReasonSubject         = "subject_invalid"
	ReasonKID             = "kid_unknown"
	ReasonNoKey           = "no_fitting_key"
	ReasonSignature       = "signature_invalid"
	ReasonExpired         = "token_expired"
	ReasonNotYetValid     = "token_not_yet_valid"
	ReasonIssuedInFuture  = "issued_in_future"
	ReasonExpMissing      = "exp_missing"
	ReasonLifetime        = "lifetime_too_long"
	ReasonAudience        = "audience_invalid"
	ReasonJTIMissing      = "jti_missing"
	ReasonReplayed        = "replayed"
	ReasonReplayFull      = "replay_store_full"
	ReasonReplayDown      = "replay_store_unavailable"
	ReasonKeysDown        = "keys_unavailable"
	ReasonScope           = "insufficient_scope"
	ReasonRequire         = "requirement_failed"
	ReasonInternal        = "internal_error"
)

// denyKind selects the shape of a deny response from the spec's table.
type denyKind int

const (
	denyBearerMissing  denyKind = iota // 401, bare Bearer challenge
	denyBearerInvalid                  // 401, error="invalid_token"
	denyBearerScope                    // 403, error="insufficient_scope"
	denyInvalidClient                  // 401, {"error":"invalid_client"}
	denyInvalidRequest                 // 400, {"error":"invalid_request"}
	denyAccess                         // 403, {"error":"access_denied"}
	denyUnavailable                    // 503, {"error":"temporarily_unavailable"}
)

func (k denyKind) status() int {
	switch k {
	case denyBearerMissing, denyBearerInvalid, denyInvalidClient:
		return http.StatusUnauthorized
	case denyBearerScope, denyAccess:
		return http.StatusForbidden
	case denyInvalidRequest:
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}
