package adversarial_test

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/jws"
)

var b64 = base64.RawURLEncoding

// claims is a token's claim set.
type claims = map[string]any

// js marshals v; the tokens built here must be exactly the JSON asked for.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// rawJWS signs the exact header and payload texts with alg and key, so that
// malformed JSON (duplicate members, bad UTF-8, deep nesting) can carry a
// genuine signature: the deny must come from the parser, not the signature.
func rawJWS(alg string, key any, header, payload string) string {
	s, err := jws.CompactRaw(alg, key, []byte(header), []byte(payload))
	if err != nil {
		panic(err)
	}
	return s
}

// compact assembles a token from texts and signature bytes, signing nothing.
func compact(header, payload string, sig []byte) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(sig)
}

// sign signs claims with alg and key, header members (kid, typ, …) merged
// over {"alg": alg}; a member given as nil is left out.
func sign(alg string, key any, header map[string]any, c claims) string {
	h := map[string]any{"alg": alg}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return rawJWS(alg, key, js(h), js(c))
}

// with returns a copy of c with each name set, or deleted when its value is
// the string "<delete>".
func with(c claims, kv ...any) claims {
	out := maps.Clone(c)
	for i := 0; i+1 < len(kv); i += 2 {
		name := kv[i].(string)
		if kv[i+1] == "<delete>" {
			delete(out, name)
		} else {
			out[name] = kv[i+1]
		}
	}
	return out
}

func unixAt(now time.Time, d time.Duration) int64 { return now.Add(d).Unix() }

// ecClaims is an RFC 7523 assertion of the ec client: iss = sub, a single
// aud, a fresh jti, two minutes to live.
func (h *harness) ecClaims() claims {
	now := h.clock.Now()
	return claims{"iss": "ec-client", "sub": "ec-client", "aud": tokenEndpoint, "jti": newJTI(), "iat": unixAt(now, 0), "exp": unixAt(now, 2*time.Minute)}
}

func (h *harness) rsaClaims() claims {
	return with(h.ecClaims(), "iss", "rsa-client", "sub", "rsa-client", "jti", newJTI())
}

// loginClaims is an RFC 9068 access token for the API, with a name the
// X-User header rule copies.
func (h *harness) loginClaims() claims {
	now := h.clock.Now()
	return claims{
		"iss": loginIss, "sub": "user-7", "aud": "api.example.com", "client_id": "reporting-app",
		"scope": "openid read", "name": "alice", "jti": newJTI(), "iat": unixAt(now, 0), "exp": unixAt(now, 5*time.Minute),
	}
}

// svidClaims is a JWT-SVID of the workload: no iss, no jti.
func (h *harness) svidClaims() claims {
	now := h.clock.Now()
	return claims{"sub": workloadSVID, "aud": []any{tokenEndpoint}, "iat": unixAt(now, 0), "exp": unixAt(now, 5*time.Minute)}
}

func signEC(c claims) string {
	return sign("ES256", testKeys().ec, map[string]any{"kid": "ec-1", "typ": "JWT"}, c)
}

func signRSA(c claims) string {
	return sign("RS256", testKeys().rsa, map[string]any{"kid": "rsa-1"}, c)
}

func signLogin(c claims) string {
	return sign("EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "at+jwt"}, c)
}

func signSpire(c claims) string {
	return sign("ES256", testKeys().spire, map[string]any{"kid": "spire-1", "typ": "JWT"}, c)
}

// mustAllow fails t unless r is allowed: the positive control beside a
// table of attacks, so that a deny is known to come from the attack.
func (h *harness) mustAllow(t *testing.T, r req) {
	t.Helper()
	resp := h.check(t, r)
	if m := metadata(resp); m["decision"] != "allow" {
		t.Fatalf("positive control denied: %v", m)
	}
}
