package jose_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/big"
	"slices"
	"strings"
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

// TestThumbprintVectors checks Thumbprint against the RFCs' examples: the
// RSA key of RFC 7638 §3.1 and the P-256 key of RFC 9449 §6.1.
func TestThumbprintVectors(t *testing.T) {
	n := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rsaPub := &rsa.PublicKey{N: new(big.Int).SetBytes(unb64(t, n)), E: 65537} // e "AQAB"
	if got, want := jose.Thumbprint(rsaPub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("RFC 7638 RSA key: Thumbprint = %s, want %s", got, want)
	}
	point := append([]byte{4}, unb64(t, "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs")...)
	point = append(point, unb64(t, "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA")...)
	ecPub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jose.Thumbprint(ecPub), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"; got != want {
		t.Errorf("RFC 9449 P-256 key: Thumbprint = %s, want %s", got, want)
	}
}

// TestATH checks ATH against the access token of RFC 9449 §7.1.
func TestATH(t *testing.T) {
	if got, want := jose.ATH("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"; got != want {
		t.Errorf("ATH = %s, want %s", got, want)
	}
}

// TestDPoPProofsAgree checks the two DPoP signers against each other and
// stdlib crypto: node's proof verifies with the public key, its jkt is
// Thumbprint's, its ath is ATH's, and both signers' headers are exactly
// alg, typ and a public jwk equal to PublicJWK's.
func TestDPoPProofsAgree(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	node := jose.NodeSigner(t)
	const tok = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	claims := map[string]any{"jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": "https://api.example.com/orders", "iat": 1700000000}
	for _, c := range []struct {
		alg  string
		priv crypto.Signer
	}{
		{"ES256", jose.P256(t)},
		{"ES384", p384},
		{"ES512", p521},
		{"EdDSA", edKey},
		{"PS256", rsaKey},
		{"RS256", rsaKey},
	} {
		t.Run(c.alg, func(t *testing.T) {
			pub := c.priv.Public()
			withATH := maps.Clone(claims)
			withATH["ath"] = true
			proof, jkt := node.DPoPProof(t, c.alg, c.priv, tok, nil, withATH)
			verify(t, c.alg, pub, proof)
			if want := jose.Thumbprint(pub); jkt != want {
				t.Errorf("node jkt = %s, Thumbprint = %s", jkt, want)
			}
			_, got := decode(t, proof)
			if want := jose.ATH(tok); got["ath"] != want {
				t.Errorf("node ath = %v, ATH = %s", got["ath"], want)
			}
			goClaims := maps.Clone(claims)
			goClaims["ath"] = jose.ATH(tok)
			goProof := jose.MustDPoPProof(t, c.alg, c.priv, nil, nil, goClaims)
			verify(t, c.alg, pub, goProof)
			for name, p := range map[string]string{"node": proof, "go": goProof} {
				h, _ := decode(t, p)
				if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, []string{"alg", "jwk", "typ"}) {
					t.Errorf("%s header members %v, want alg, jwk, typ", name, got)
				}
				if h["alg"] != c.alg || h["typ"] != "dpop+jwt" {
					t.Errorf("%s header alg %v typ %v", name, h["alg"], h["typ"])
				}
				want := jose.PublicJWK("", "", pub)
				delete(want, "use")
				if jwk, _ := h["jwk"].(map[string]any); !maps.Equal(jwk, want) {
					t.Errorf("%s header jwk %v, want the public JWK %v", name, h["jwk"], want)
				}
			}
		})
	}
}

// TestDPoPProofHostile checks that the Go signer makes each hostile proof
// it documents.
func TestDPoPProofHostile(t *testing.T) {
	priv := jose.P256(t)
	claims := map[string]any{"jti": "x", "htm": "POST", "htu": "https://api.example.com/token", "iat": 1700000000}
	secret := []byte("not a key anyone should accept")

	h, _ := decode(t, jose.MustDPoPProof(t, "ES256", priv, nil, map[string]any{"jwk": jose.PrivateJWK(priv)}, claims))
	if jwk, _ := h["jwk"].(map[string]any); jwk["d"] == nil {
		t.Errorf("private jwk: header jwk %v has no d", h["jwk"])
	}

	p := jose.MustDPoPProof(t, "HS256", secret, priv.Public(), nil, claims)
	h, _ = decode(t, p)
	if jwk, _ := h["jwk"].(map[string]any); h["alg"] != "HS256" || jwk["kty"] != "EC" {
		t.Errorf("HS256 with an EC jwk: header %v", h)
	}
	i := strings.LastIndexByte(p, '.')
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(p[:i]))
	if !hmac.Equal(m.Sum(nil), unb64(t, p[i+1:])) {
		t.Error("HS256 with an EC jwk: the HMAC does not verify")
	}

	h, _ = decode(t, jose.MustDPoPProof(t, "ES256", priv, nil, map[string]any{"typ": "JWT"}, claims))
	if h["typ"] != "JWT" {
		t.Errorf("typ JWT: header typ %v", h["typ"])
	}

	h, _ = decode(t, jose.MustDPoPProof(t, "ES256", priv, nil, map[string]any{"jwk": nil}, claims))
	if _, ok := h["jwk"]; ok || h["typ"] != "dpop+jwt" {
		t.Errorf("no jwk: header %v", h)
	}

	p = jose.MustDPoPProof(t, "none", nil, priv.Public(), nil, claims)
	if h, _ = decode(t, p); h["alg"] != "none" || !strings.HasSuffix(p, ".") || h["jwk"] == nil {
		t.Errorf("alg none: %s, header %v", p, h)
	}

	if _, err := jose.DPoPProof("HS256", secret, nil, nil, claims); err == nil {
		t.Error("HS256 without pub or a header jwk: no error")
	}
}

// decode returns the protected header and the claims of a compact JWS.
func decode(t *testing.T, jws string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", jws)
	}
	if err := json.Unmarshal(unb64(t, parts[0]), &header); err != nil {
		t.Fatalf("header: %v", err)
	}
	if err := json.Unmarshal(unb64(t, parts[1]), &claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	return header, claims
}

// verify checks the signature of jws with pub using stdlib crypto only.
func verify(t *testing.T, alg string, pub crypto.PublicKey, jws string) {
	t.Helper()
	i := strings.LastIndexByte(jws, '.')
	input, sig := []byte(jws[:i]), unb64(t, jws[i+1:])
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	}
	var digest []byte
	if h != 0 {
		d := h.New()
		d.Write(input)
		digest = d.Sum(nil)
	}
	var ok bool
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		ok = alg == "EdDSA" && ed25519.Verify(pub, input, sig)
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		ok = strings.HasPrefix(alg, "ES") && n == (pub.Curve.Params().BitSize+7)/8 &&
			ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	case *rsa.PublicKey:
		switch {
		case strings.HasPrefix(alg, "RS"):
			ok = rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil
		case strings.HasPrefix(alg, "PS"):
			ok = rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
	}
	if !ok {
		t.Errorf("%s signature does not verify with stdlib crypto: %s", alg, jws)
	}
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}
