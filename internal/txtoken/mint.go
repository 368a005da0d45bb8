package txtoken

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/jws"
)

// TokenType is the JWT typ of an internal token: the Transaction Tokens
// draft's media type, so that an upstream (or a library set to check typ)
// cannot mistake it for an access or ID token.
const TokenType = "txntoken+jwt"

// reserved are the claims extauthz sets itself; a rule's claims may not
// name them. nbf, cnf, act and azp are never set but would change what the
// token means to a verifier.
var reserved = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"txn": true, "purp": true, "rctx": true, "tctx": true, "scope": true,
	"client_id": true, "spiffe_id": true, "orig_iss": true, "orig_jti": true,
	"cnf": true, "act": true, "azp": true,
}

// Reserved reports whether a rule's claims may not set name.
func Reserved(name string) bool { return reserved[name] }

// Facts are what one allowed request tells the minter.
type Facts struct {
	Audience string
	Lifetime time.Duration
	// Purpose is the Transaction Tokens purp; "" leaves it out.
	Purpose  string
	ClientID string
	SpiffeID string
	Scopes   []string
	// TokenIssuer and TokenID are the verified credential's iss and jti.
	TokenIssuer string
	TokenID     string
	// Authn is how the caller authenticated: bearer, dpop,
	// client_assertion or none (rctx.authn).
	Authn string
	// Rule names the rule that allowed the request (tctx.rule).
	Rule string
	// IssuerVars are a templated issuer's variables (tctx.issuer_vars).
	IssuerVars map[string]string
	// Extra are the rule's computed claims, JSON values.
	Extra map[string]any
}

// Minter signs internal tokens with the keyring's current signer. Keys nil
// builds the claims but signs nothing (Mint returns ErrUnsigned), for
// offline previews.
type Minter struct {
	// Issuer is the iss of every token: the URL that serves the discovery
	// document.
	Issuer string
	Keys   *Keyring
}

// ErrUnsigned is Mint's error when the Minter has no keys.
var ErrUnsigned = errors.New("txtoken: no signing keys configured; claims only")

// Minted is one signed token.
type Minted struct {
	Token  string
	KID    string
	Claims map[string]any
	Expiry time.Time
}

// Claims builds the claims of f at now, with a fresh jti.
func (m *Minter) Claims(f Facts, now time.Time) map[string]any {
	c := make(map[string]any, 16+len(f.Extra))
	for k, v := range f.Extra {
		c[k] = v
	}
	jti := newID()
	iat := now.Unix()
	c["iss"] = m.Issuer
	c["aud"] = f.Audience
	c["iat"] = iat
	c["exp"] = iat + int64(f.Lifetime/time.Second)
	c["jti"] = jti
	// One token, one transaction: the draft's txn identifies the call
	// chain this token starts.
	c["txn"] = jti
	if f.ClientID != "" {
		c["sub"] = f.ClientID
		c["client_id"] = f.ClientID
	} else if f.SpiffeID != "" {
		c["sub"] = f.SpiffeID
	}
	if f.SpiffeID != "" {
		c["spiffe_id"] = f.SpiffeID
	}
	if len(f.Scopes) > 0 {
		c["scope"] = strings.Join(f.Scopes, " ")
	}
	if f.TokenIssuer != "" {
		c["orig_iss"] = f.TokenIssuer
	}
	if f.TokenID != "" {
		c["orig_jti"] = f.TokenID
	}
	if f.Purpose != "" {
		c["purp"] = f.Purpose
	}
	authn := f.Authn
	if authn == "" {
		authn = "none"
	}
	c["rctx"] = map[string]any{"authn": authn}
	tctx := map[string]any{"rule": f.Rule}
	if len(f.IssuerVars) > 0 {
		tctx["issuer_vars"] = f.IssuerVars
	}
	c["tctx"] = tctx
	return c
}

// Mint builds and signs the token of f at now.
func (m *Minter) Mint(f Facts, now time.Time) (*Minted, error) {
	claims := m.Claims(f, now)
	out := &Minted{Claims: claims, Expiry: time.Unix(claims["exp"].(int64), 0)}
	if m.Keys == nil {
		return out, ErrUnsigned
	}
	k, err := m.Keys.Signer(now)
	if err != nil {
		return out, err
	}
	tok, err := sign(k, claims)
	if err != nil {
		return out, err
	}
	out.Token, out.KID = tok, k.KID
	return out, nil
}

// sign writes the compact JWS of claims. encoding/json escapes control
// characters in strings, and the segments are base64url, so no claim value
// can put CR or LF into the header that carries the token.
func sign(k *Key, claims map[string]any) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": k.Alg, "kid": k.KID, "typ": TokenType})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("txtoken: claims: %w", err)
	}
	tok, err := jws.CompactRaw(k.Alg, k.signer, hdr, body)
	if err != nil {
		return "", fmt.Errorf("txtoken: sign: %w", err)
	}
	return tok, nil
}

// newID is a random 128-bit jti.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return b64.EncodeToString(b[:])
}
