package keys

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// useJWTSVID and useX509SVID are the SPIFFE bundle's "use" values.
	useJWTSVID  = "jwt-svid"
	useX509SVID = "x509-svid"
)

// svidKeyRules accept bundle keys marked for JWT-SVIDs, or not marked at
// all (the Workload API's JWT bundles and SPIRE's JWKS often omit "use").
var svidKeyRules = keyRules{uses: []string{useJWTSVID}}

// svidUseRule is the rule a bundle key's "use" breaks, in the words of the
// JWT-SVID standard (section 6.1), not OAuth's: the common "sig" is the
// trap, a bundle whose keys all say it verifies nothing.
const svidUseRule = `in a SPIFFE bundle a JWT-SVID key has "use": "jwt-svid" (or no use)`

// svidSigHint tells whoever copied an OIDC JWKS into a bundle file where
// such a set goes instead.
const svidSigHint = `; a JWK Set of "use": "sig" keys, as an OIDC discovery provider serves it, is a jwks_file issuer with spiffe_trust_domain`

// useFaults says which keys of a bundle were left out for their "use" and
// what the rule is, or "" when none was: one text for the load error, the
// log line and the deny, so that each tells the operator what to change.
func useFaults(skipped []skippedKey) string {
	var keys []string
	sig := false
	for _, sk := range skipped {
		if sk.Reason != skipUse {
			continue
		}
		keys = append(keys, fmt.Sprintf(`%s has "use": %q`, sk.subject(), sk.use))
		sig = sig || sk.use == "sig"
	}
	if len(keys) == 0 {
		return ""
	}
	msg := strings.Join(keys, ", ") + "; " + svidUseRule
	if sig {
		msg += svidSigHint
	}
	return msg
}

// describeBundleSkip is a skipped bundle key for the log.
func describeBundleSkip(sk skippedKey) string {
	if sk.Reason == skipUse {
		return useFaults([]skippedKey{sk})
	}
	return sk.String()
}

// spiffeBundle is what a SPIFFE bundle (or plain JWK Set) holds for us.
type spiffeBundle struct {
	set         *Set
	skipped     []skippedKey
	roots       []*x509.Certificate // x509-svid authorities
	refreshHint time.Duration
}

// parseSPIFFEBundle reads a SPIFFE bundle (SPIFFE Trust Domain and Bundle
// §4) or a plain JWK Set, as the Workload API and spiffe-helper give it.
// x509-svid entries are X.509 authorities, kept apart; the JWT-SVID keys
// pass the same hygiene rules as any JWKS key, must carry use "jwt-svid"
// when they carry use at all, and must have a kid, which the bundle format
// requires of JWT authorities. An empty "keys" array is a valid bundle with
// no keys; a missing one is not a bundle.
func parseSPIFFEBundle(data []byte) (*spiffeBundle, error) {
	var doc struct {
		Keys        *[]json.RawMessage `json:"keys"`
		RefreshHint *int64             `json:"spiffe_refresh_hint"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a SPIFFE bundle or JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`not a SPIFFE bundle or JWK Set: no "keys" array`)
	}
	if len(*doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("bundle has %d keys, more than %d", len(*doc.Keys), maxJWKSKeys)
	}
	out := &spiffeBundle{}
	if doc.RefreshHint != nil && *doc.RefreshHint > 0 {
		out.refreshHint = time.Duration(min(*doc.RefreshHint, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	var keys []*Key
	for i, raw := range *doc.Keys {
		var f struct {
			Use *string  `json:"use"`
			Kid *string  `json:"kid"`
			X5C []string `json:"x5c"`
		}
		_ = json.Unmarshal(raw, &f) // parseJWK reports a malformed entry
		kid := ""
		if f.Kid != nil {
			kid = *f.Kid
		}
		if f.Use != nil && *f.Use == useX509SVID {
			if len(f.X5C) != 1 {
				out.skipped = append(out.skipped, skippedKey{Index: i, KID: kid, Reason: skipMalformed,
					Detail: fmt.Sprintf("x509-svid authority with %d certificates, want 1", len(f.X5C))})
				continue
			}
			der, err := base64.StdEncoding.DecodeString(f.X5C[0])
			var cert *x509.Certificate
			if err == nil {
				cert, err = x509.ParseCertificate(der)
			}
			if err != nil {
				out.skipped = append(out.skipped, skippedKey{Index: i, KID: kid, Reason: skipMalformed,
					Detail: fmt.Sprintf("x509-svid authority: %v", err)})
				continue
			}
			out.roots = append(out.roots, cert)
			continue
		}
		k, sk := parseJWK(raw, svidKeyRules)
		switch {
		case k == nil:
			sk.Index = i
			if sk.Reason == skipUse {
				sk.use = *f.Use
				sk.Detail = fmt.Sprintf(`has "use": %q; %s`, sk.use, svidUseRule)
			}
			out.skipped = append(out.skipped, sk)
		case k.ID == "":
			out.skipped = append(out.skipped, skippedKey{Index: i, Reason: skipMalformed,
				Detail: "JWT-SVID key without kid; a SPIFFE bundle requires one"})
		default:
			keys = append(keys, k)
		}
	}
	out.set = NewSet(keys)
	return out, nil
}
