package jws_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/extauthz/extauthz/internal/jws"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/token"
)

// TestSignsWhatTokenVerifies signs with every algorithm of the key table
// and verifies with package token, and refuses a key of the wrong kind.
// A key of the wrong curve signs, at its size, for tests that forge that.
func TestSignsWhatTokenVerifies(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec := map[string]*ecdsa.PrivateKey{}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		ec[c.Params().Name], _ = ecdsa.GenerateKey(c, rand.Reader)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	secret := make([]byte, 64)
	_, _ = rand.Read(secret)
	for _, a := range keys.Algorithms() {
		var priv, pub any
		switch a.Kind {
		case keys.KindRSA, keys.KindRSAPSS:
			priv, pub = rsaKey, &rsaKey.PublicKey
		case keys.KindECDSA:
			k := ec[a.Curve.Params().Name]
			priv, pub = k, &k.PublicKey
		case keys.KindEdDSA:
			priv, pub = ed, ed.Public()
		default:
			priv, pub = secret, secret
		}
		raw, err := jws.Compact(a.Name, priv, map[string]any{"alg": a.Name}, []byte(`{"iss":"x","exp":1}`))
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		tok, err := token.Parse(raw, token.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		if err := tok.Verify([]*keys.Key{{Public: pub}}); err != nil {
			t.Errorf("%s: %v", a.Name, err)
		}
		if _, err := jws.Signature(a.Name, "not a key", []byte("x")); err == nil {
			t.Errorf("%s signed with a string", a.Name)
		}
	}
	if sig, err := jws.Signature("ES384", ec["P-256"], []byte("x")); err != nil || len(sig) != 64 {
		t.Errorf("ES384 with a P-256 key, as a forger would: %d bytes, %v", len(sig), err)
	}
	if sig, err := jws.Signature("none", nil, []byte("x")); err != nil || sig != nil {
		t.Errorf("none: %x, %v", sig, err)
	}
}
