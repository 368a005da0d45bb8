package txtoken

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decode verifies tok with pub by hand (stdlib only) and returns its header
// and claims.
func decode(t *testing.T, tok string, pub any) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	input := []byte(parts[0] + "." + parts[1])
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		h := sha256.Sum256(input)
		if len(sig) != 64 || !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("ES256 signature does not verify")
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, input, sig) {
			t.Fatal("EdDSA signature does not verify")
		}
	}
	var hdr, claims map[string]any
	for i, v := range []*map[string]any{&hdr, &claims} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, claims
}

func TestMintExactClaims(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			var pub any
			var data []byte
			if alg == AlgES256 {
				var k *ecdsa.PrivateKey
				k, data = p256PEM(t)
				pub = &k.PublicKey
			} else {
				var k ed25519.PrivateKey
				k, data = ed25519PEM(t)
				pub = k.Public()
			}
			path := filepath.Join(t.TempDir(), "key.pem")
			write(t, path, data)
			r, err := Open(Config{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			m := &Minter{Issuer: "https://extauthz.example", Keys: r}
			now := time.Unix(1_900_000_000, 0)
			got, err := m.Mint(Facts{
				Audience: "orders", Lifetime: time.Minute, Purpose: "checkout",
				ClientID: "app-1", SpiffeID: "spiffe://example.org/app", Scopes: []string{"read", "write"},
				TokenIssuer: "https://idp.example", TokenID: "orig-1", Authn: "dpop", Rule: "orders-api",
				IssuerVars: map[string]string{"tenant": "acme"},
				Extra:      map[string]any{"tier": "gold", "evil": "a\r\nb"},
			}, now)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(got.Token, "\r\n") {
				t.Fatal("CR/LF in the token")
			}
			hdr, claims := decode(t, got.Token, pub)
			s, _ := r.Signer(now)
			if want := map[string]any{"alg": alg, "kid": s.KID, "typ": "txntoken+jwt"}; !reflect.DeepEqual(hdr, want) {
				t.Fatalf("header = %v, want %v", hdr, want)
			}
			jti, _ := claims["jti"].(string)
			if len(jti) != 22 {
				t.Fatalf("jti = %q", jti)
			}
			want := map[string]any{
				"iss": "https://extauthz.example", "aud": "orders", "iat": 1.9e9, "exp": 1.9e9 + 60,
				"jti": jti, "txn": jti, "sub": "app-1", "client_id": "app-1", "spiffe_id": "spiffe://example.org/app",
				"scope": "read write", "orig_iss": "https://idp.example", "orig_jti": "orig-1", "purp": "checkout",
				"rctx": map[string]any{"authn": "dpop"},
				"tctx": map[string]any{"rule": "orders-api", "issuer_vars": map[string]any{"tenant": "acme"}},
				"tier": "gold", "evil": "a\r\nb",
			}
			if !reflect.DeepEqual(claims, want) {
				t.Fatalf("claims = %v\nwant %v", claims, want)
			}
			if got.Expiry != now.Add(time.Minute) || got.KID != s.KID {
				t.Fatalf("expiry %v kid %s", got.Expiry, got.KID)
			}
		})
	}
}

func TestMintMinimalAndUnsigned(t *testing.T) {
	m := &Minter{Issuer: "https://x"}
	got, err := m.Mint(Facts{Audience: "a", Lifetime: time.Second, Rule: "public"}, time.Unix(10, 0))
	if err != ErrUnsigned || got.Token != "" {
		t.Fatalf("Mint = %v, %v", got, err)
	}
	for _, absent := range []string{"sub", "client_id", "spiffe_id", "scope", "orig_iss", "orig_jti", "purp"} {
		if _, ok := got.Claims[absent]; ok {
			t.Errorf("claim %s set with no fact", absent)
		}
	}
	if !reflect.DeepEqual(got.Claims["rctx"], map[string]any{"authn": "none"}) {
		t.Fatalf("rctx = %v", got.Claims["rctx"])
	}
}

func TestReserved(t *testing.T) {
	for _, n := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "txn", "purp", "rctx", "tctx", "scope", "client_id", "spiffe_id", "orig_iss", "orig_jti", "nbf", "cnf"} {
		if !Reserved(n) {
			t.Errorf("%s is not reserved", n)
		}
	}
	for _, n := range []string{"is_agent", "tier", "email"} {
		if Reserved(n) {
			t.Errorf("%s is reserved", n)
		}
	}
}
