package token_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/token"
)

func Example() {
	// An issuer's key, and a token it signed.
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(`{"alg":"EdDSA","kid":"k1"}`)) + "." +
		b64([]byte(`{"iss":"https://idp.example","sub":"client-1","aud":"https://api.example","exp":1900000000}`))
	raw := input + "." + b64(ed25519.Sign(priv, []byte(input)))

	t, err := token.Parse(raw, token.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// In the server, the keys come from keys.Source.Keys(ctx, t.Header.Kid).
	candidates := []*keys.Key{{ID: "k1", Public: priv.Public()}}
	if err := t.Verify(candidates); err != nil {
		fmt.Println(err)
		return
	}
	if err := t.ValidateTime(time.Unix(1800000000, 0), 30*time.Second, true); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Issuer, t.Subject, t.Audience, t.AudienceIsArray)

	// An unsigned token is refused before any key is looked at.
	_, err = token.Parse(b64([]byte(`{"alg":"none"}`))+"."+b64([]byte(`{}`))+".", token.Limits{})
	fmt.Println(errors.Is(err, token.ErrAlgorithm), err)
	// Output:
	// https://idp.example client-1 [https://api.example] false
	// true token: algorithm not allowed: alg none
}
