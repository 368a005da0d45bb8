package check

import (
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// TestSVIDAlgorithms walks the key table through the JWT-SVID rules: only
// RS*, ES* and PS* pass, whatever an issuer's allow-list admits, so EdDSA
// under either of its names and HMAC are refused.
func TestSVIDAlgorithms(t *testing.T) {
	is := &policy.Issuer{Name: "spire", TrustDomain: "example.org"}
	for _, a := range keys.Algorithms() {
		tok := &token.Token{Header: token.Header{Alg: a.Name}, HasAudience: true, HasSubject: true, Subject: "spiffe://example.org/w"}
		got := svidRules(tok, is)
		want := ""
		if a.Kind == keys.KindEdDSA || a.Kind == keys.KindHMAC {
			want = ReasonAlgorithm
		}
		if got != want {
			t.Errorf("%s: svidRules = %q, want %q", a.Name, got, want)
		}
	}
}
