package check_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/extauthz/extauthz/test/jose"
)

// claims is a token's claim set; the builders below return fresh ones.
type claims map[string]any

// set returns c with each name set to its value, or deleted when the value
// is nil.
func (c claims) set(kv ...any) claims {
	for i := 0; i+1 < len(kv); i += 2 {
		name := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, name)
		} else {
			c[name] = kv[i+1]
		}
	}
	return c
}

// partnerClaims is an RFC 7523 client assertion of the partner: iss = sub =
// its client id, a single aud, a fresh jti, two minutes to live.
func partnerClaims() claims {
	return claims{
		"iss": partnerIss, "sub": partnerIss, "aud": tokenEndpoint, "jti": newJTI(),
		"iat": unix(0), "exp": unix(2 * time.Minute),
	}
}

// svidClaims is a JWT-SVID of the workload, as SPIRE's OIDC discovery
// provider setup issues it: no jti.
func svidClaims() claims {
	return claims{
		"iss": spireIss, "sub": workloadSVID, "aud": []any{tokenEndpoint},
		"iat": unix(0), "exp": unix(5 * time.Minute),
	}
}

// loginClaims is an RFC 9068 access token for the reports API.
func loginClaims() claims {
	return claims{
		"iss": loginIss, "sub": "user-7", "aud": "api.example.com", "client_id": "reporting-app",
		"scope": "openid reports", "jti": newJTI(), "iat": unix(0), "exp": unix(5 * time.Minute),
	}
}

// signPartner signs c as the partner does: PS256 with its key.
func signPartner(t *testing.T, c claims) string {
	t.Helper()
	return jose.MustSign(t, "PS256", testKeys().partner, map[string]any{"kid": "partner-1", "typ": "JWT"}, c)
}

// signOther signs c with the other issuer's RS256 key.
func signOther(t *testing.T, c claims) string {
	t.Helper()
	return jose.MustSign(t, "RS256", testKeys().other, map[string]any{"kid": "other-1"}, c)
}

// signSpire signs c as SPIRE does: ES256, typ JWT.
func signSpire(t *testing.T, c claims) string {
	t.Helper()
	return jose.MustSign(t, "ES256", testKeys().spire, map[string]any{"kid": "spire-1", "typ": "JWT"}, c)
}

// signLogin signs c as the authorization server does: EdDSA, typ at+jwt.
func signLogin(t *testing.T, c claims) string {
	t.Helper()
	return jose.MustSign(t, "EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "at+jwt"}, c)
}

// publicPEM is the PEM of an RSA public key: the "secret" of the classic
// HS256 key-confusion attack.
func publicPEM(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// tamper flips one bit in the middle of the signature, keeping it
// canonical base64url.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 10
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
