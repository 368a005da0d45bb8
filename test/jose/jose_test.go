package jose_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/extauthz/extauthz/test/jose"
)

// TestSignersAgree checks the helpers against a third implementation (jwx):
// what the Go signer and the npm signer make verifies with the public JWK
// that PublicJWK writes, so a test that fails elsewhere fails for extauthz's
// reasons, not the helpers'.
func TestSignersAgree(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey := jose.P256(t)
	node := jose.NodeSigner(t)
	claims := map[string]any{"iss": "partner-api-client", "sub": "partner-api-client", "exp": 2000000000}
	for _, c := range []struct {
		alg  string
		priv crypto.Signer
	}{
		{"PS256", rsaKey},
		{"RS256", rsaKey},
		{"ES256", ecKey},
		{"EdDSA", edKey},
	} {
		t.Run(c.alg, func(t *testing.T) {
			pubJSON, err := json.Marshal(jose.PublicJWK("k1", c.alg, c.priv.Public()))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := jwk.ParseKey(pubJSON)
			if err != nil {
				t.Fatalf("jwx cannot read PublicJWK: %v", err)
			}
			alg, ok := jwa.LookupSignatureAlgorithm(c.alg)
			if !ok {
				t.Fatalf("jwx does not know %s", c.alg)
			}
			header := map[string]any{"kid": "k1", "typ": "JWT"}
			for name, tok := range map[string]string{
				"go":   jose.MustSign(t, c.alg, c.priv, header, claims),
				"node": node.Sign(t, c.alg, c.priv, header, claims),
			} {
				if _, err := jws.Verify([]byte(tok), jws.WithKey(alg, pub)); err != nil {
					t.Errorf("%s signer: jwx does not verify %s: %v", name, c.alg, err)
				}
			}
		})
	}
}
