// Package dpop verifies DPoP proofs (RFC 9449): the JWTs a client signs with
// its own key to show that it holds the key an access token is bound to.
//
// It owns the proof half of sender-constrained tokens: parsing the proof
// (through package token's strict compact-JWS parser), reading the public
// key the proof carries in its jwk header and computing its RFC 7638
// thumbprint, comparing htm and htu with the request after RFC 9449 §4.3
// normalisation, bounding iat, checking ath against the access token, and
// issuing and checking server nonces. It does not remember proofs (package
// replay keeps jtis single-use) nor decide what a rule requires (package
// check does).
//
// # Use
//
//	p, err := dpop.Verify(header, dpop.Request{Method: "GET", Scheme: "https",
//		Authority: "api.example.com", Path: "/reports/q1"}, &opts, now)
//	if err != nil {
//		return err // wraps one of the Err sentinels
//	}
//	if p.JKT != cnfJKT {
//		// the proof's key is not the key the token is bound to
//	}
package dpop
