package check

import "net/http"

// Reason codes are stable and machine-readable: they appear in the decision's
// dynamic metadata, the decision log and metric labels. Never rename one.
const (
	ReasonAllowed            = "allowed"
	ReasonPublicRoute        = "public_route"
	ReasonDefaultAllow       = "default_allow"
	ReasonNoRule             = "no_rule_matched"
	ReasonUnknownRule        = "unknown_rule"
	ReasonMissing            = "credential_missing"
	ReasonMalformedReq       = "malformed_request"
	ReasonPartialBody        = "partial_body"
	ReasonBodyTooLarge       = "body_too_large"
	ReasonBadForm            = "bad_form_encoding"
	ReasonDuplicateParam     = "duplicate_parameter"
	ReasonTwoCredentials     = "multiple_credentials"
	ReasonSecretAndAssert    = "assertion_with_client_secret"
	ReasonCredentialsInQuery = "credentials_in_query"
	ReasonAssertionType      = "assertion_type_unsupported"
	ReasonClientIDParam      = "client_id_mismatch"
	ReasonMalformedToken     = "token_malformed"
	ReasonAlgorithm          = "algorithm_not_allowed"
	ReasonCritical           = "crit_unsupported"
	ReasonClaimType          = "claim_type_invalid"
	ReasonTokenType          = "token_type_invalid"
	ReasonIssuer             = "issuer_unknown"
	// ReasonIssuerTenant: iss has a templated issuer's shape but a variable
	// fails its pattern, safe charset or allow list, or its bound claim.
	ReasonIssuerTenant   = "issuer_tenant"
	ReasonSubject        = "subject_invalid"
	ReasonKID            = "kid_unknown"
	ReasonNoKey          = "no_fitting_key"
	ReasonSignature      = "signature_invalid"
	ReasonExpired        = "token_expired"
	ReasonNotYetValid    = "token_not_yet_valid"
	ReasonIssuedInFuture = "issued_in_future"
	ReasonExpMissing     = "exp_missing"
	ReasonLifetime       = "lifetime_too_long"
	ReasonAudience       = "audience_invalid"
	ReasonJTIMissing     = "jti_missing"
	ReasonReplayed       = "replayed"
	ReasonReplayFull     = "replay_store_full"
	ReasonReplayDown     = "replay_store_unavailable"
	ReasonKeysDown       = "keys_unavailable"
	ReasonScope          = "insufficient_scope"
	ReasonScopeMalformed = "scope_malformed"
	ReasonRequire        = "requirement_failed"
	ReasonInternal       = "internal_error"
	// The internal token (internaltoken.go): no key may sign yet, or a
	// claim expression failed.
	ReasonTokenUnavailable = "internal_token_unavailable"
	ReasonTokenClaims      = "internal_token_claims_failed"

	// Sender-constrained tokens and explicit typing.
	ReasonDPoPRequired      = "dpop_required"
	ReasonDPoPMissing       = "dpop_proof_missing"
	ReasonDPoPInvalid       = "dpop_proof_invalid"
	ReasonDPoPAlgorithm     = "dpop_algorithm_not_allowed"
	ReasonDPoPSignature     = "dpop_signature_invalid"
	ReasonDPoPMethod        = "dpop_htm_mismatch"
	ReasonDPoPURI           = "dpop_htu_mismatch"
	ReasonDPoPStale         = "dpop_proof_expired"
	ReasonDPoPFuture        = "dpop_issued_in_future"
	ReasonDPoPATH           = "dpop_ath_mismatch"
	ReasonDPoPNonce         = "dpop_nonce_required"
	ReasonDPoPReplayed      = "dpop_proof_replayed"
	ReasonDPoPKeyMismatch   = "dpop_key_mismatch"
	ReasonDPoPUnbound       = "token_not_dpop_bound"
	ReasonBoundNoProof      = "bound_token_without_proof"
	ReasonCnfUnsupported    = "cnf_unsupported"
	ReasonCertMissing       = "peer_certificate_missing"
	ReasonCertInvalid       = "peer_certificate_invalid"
	ReasonCertMismatch      = "certificate_binding_mismatch"
	ReasonPeerSVID          = "peer_svid_mismatch"
	ReasonAccessTokenClaims = "assertion_has_access_token_claims"
	ReasonIDTokenClaims     = "id_token_claims"
	ReasonProfileClaim      = "rfc9068_claim_missing"

	// RFC 9470 step-up (stepup.go): acr absent or not one of acr_values;
	// auth_time absent or not a number; auth_time older than max_age.
	ReasonACR             = "acr_insufficient"
	ReasonAuthTimeMissing = "auth_time_missing"
	ReasonAuthTimeStale   = "auth_time_stale"

	// The gRPC path answered an RFC 9728 metadata request (resource.go).
	ReasonResourceMetadata = "resource_metadata"

	// Opaque tokens (introspect.go): the issuer says inactive (401), or no
	// answer could be had and none is cached (503).
	ReasonInactive          = "token_inactive"
	ReasonIntrospectionDown = "introspection_unavailable"

	// RFC 7523 §2.1 authorization grants (grant.go).
	ReasonGrantMalformed       = "grant_malformed"
	ReasonGrantRequired        = "grant_required"
	ReasonGrantNotAllowed      = "grant_not_allowed"
	ReasonAssertionNotAccepted = "client_assertion_not_accepted"

	// A request with invalid UTF-8 in a string field (codec.go).
	ReasonUndecodable = "request_undecodable"
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
	denyDPoPProof                      // 401, DPoP error="invalid_dpop_proof"
	denyDPoPNonce                      // 401, DPoP error="use_dpop_nonce" and DPoP-Nonce
	denyTokenDPoPProof                 // 400, {"error":"invalid_dpop_proof"} (token endpoint)
	denyTokenDPoPNonce                 // 400, {"error":"use_dpop_nonce"} and DPoP-Nonce
	denyStepUp                         // 401, error="insufficient_user_authentication" (RFC 9470)
	denyInvalidGrant                   // 400, {"error":"invalid_grant"} (RFC 6749 §5.2)
)

func (k denyKind) status() int {
	switch k {
	case denyBearerMissing, denyBearerInvalid, denyInvalidClient, denyDPoPProof, denyDPoPNonce, denyStepUp:
		return http.StatusUnauthorized
	case denyBearerScope, denyAccess:
		return http.StatusForbidden
	case denyInvalidRequest, denyTokenDPoPProof, denyTokenDPoPNonce, denyInvalidGrant:
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}
