package jose

import (
	"encoding/json"
	"testing"
)

// Verified is what verify.mjs reports: the payload and kid of a token the
// npm jose library accepted, or the code of its refusal.
type Verified struct {
	OK      bool           `json:"ok"`
	KID     string         `json:"kid"`
	Payload map[string]any `json:"payload"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
}

// VerifyRemote verifies token as an upstream does with the npm jose
// library: createRemoteJWKSet on jwksURL (a fresh set, so no cached keys),
// then jwtVerify requiring issuer, audience and typ. A refusal is a
// result, not a test failure.
func (n *Node) VerifyRemote(t testing.TB, jwksURL, token, issuer, audience, typ string) Verified {
	t.Helper()
	out := n.run(t, "verify.mjs", map[string]any{"jwksUrl": jwksURL, "token": token, "issuer": issuer, "audience": audience, "typ": typ})
	var v Verified
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("jose: verify.mjs printed %q: %v", out, err)
	}
	return v
}
