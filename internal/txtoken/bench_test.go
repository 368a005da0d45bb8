package txtoken

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkMint is the cost an allow of a rule with internal_token adds
// when the token is not reused: the claims, their JSON and one signature.
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			var data []byte
			if alg == AlgES256 {
				_, data = p256PEM(b)
			} else {
				_, data = ed25519PEM(b)
			}
			path := filepath.Join(b.TempDir(), "k.pem")
			write(b, path, data)
			r, err := Open(Config{Path: path})
			if err != nil {
				b.Fatal(err)
			}
			m := &Minter{Issuer: "https://extauthz.example", Keys: r}
			f := Facts{Audience: "orders", Lifetime: time.Minute, ClientID: "app", Scopes: []string{"read"},
				TokenIssuer: "https://idp.example", TokenID: "j", Authn: "bearer", Rule: "r", Extra: map[string]any{"user": "alice"}}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Mint(f, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
