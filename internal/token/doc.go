// Package token parses and verifies the JWTs extauthz accepts: OAuth client
// assertions (RFC 7523) and bearer access tokens, SPIFFE JWT-SVIDs included,
// in the JWS compact serialisation.
//
// It owns the untrusted-input half of verification: splitting the compact
// form, decoding base64url, parsing the JOSE header and the claims set,
// checking the signature with stdlib crypto, and checking exp, nbf and iat.
// It does not choose keys (package keys does, by issuer and kid), nor decide
// which issuer, audience or subject is acceptable (package check does).
//
// # Why strict
//
// General JWT libraries are lenient where leniency is an attack surface: they
// take the last of duplicate JSON members (so two components can read
// different claims from one token), replace invalid UTF-8, accept padded or
// non-canonical base64 (so one token has many spellings, defeating caches and
// replay stores), let the header pick a verifier for any key, and read "exp"
// from strings. This package accepts exactly one spelling of a
// token:
//
//   - three base64url segments without padding, canonical, nothing else;
//   - a header and a payload that are each one JSON object, valid UTF-8, no
//     duplicate member names, nested at most 32 deep;
//   - alg from a fixed allow-list, and a key only of the type that alg names
//     (keys.Key.Fits, plus a 2048-bit RSA floor); never "none", never crit;
//   - registered claims of their registered types, NumericDates as JSON
//     numbers (fractions allowed) within 0 to 9999-12-31T23:59:59Z.
//
// Every failure wraps one of the Err sentinels, which callers map to stable
// reason codes with errors.Is; messages never contain the token.
//
// # Use
//
//	t, err := token.Parse(raw, token.Limits{})
//	if err != nil {
//		return err // ErrMalformed, ErrAlgorithm, ErrCritical or ErrClaimType
//	}
//	candidates, err := src.Keys(ctx, t.Header.Kid)
//	if err != nil {
//		return err
//	}
//	if err := t.Verify(candidates); err != nil {
//		return err // ErrNoKey or ErrSignature
//	}
//	if err := t.ValidateTime(clock.Now(), 30*time.Second, true); err != nil {
//		return err // ErrExpired, ErrNotYetValid, ErrIssuedInFuture, ErrMissingExpiry
//	}
//	// t.Issuer, t.Audience, t.Claims()... are now trustworthy. A cache
//	// keeps t.Compact(); its View gives the token back.
//
// Parse validates the whole payload but builds nothing of it: values are
// vetted in place, the registered claims lifted typed and the ones every
// Check probes (client_id, scope, cnf and a few more) indexed, and Claims
// builds the map from the payload the first time a caller asks, for a
// parsed token and a cached view alike. A cache of verified tokens names a
// token by DigestOf, whose Parse lets Verify reuse the hash of the signing
// input, so a new token is hashed once.
package token
