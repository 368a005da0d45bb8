package check

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
	"github.com/extauthz/extauthz/internal/txtoken"
)

// unsignedToken is the header value of an offline preview (extauthz check
// or test without --token-keys): plainly not a JWT, so nothing could
// mistake it for one.
const unsignedToken = "unsigned-preview"

// mintCache reuses an internal token for the same verified credential and
// rule while most of its lifetime remains, so a client sending the same
// bearer token costs one signature per reuse window, not one per request.
// The key holds the rule pointer: a reload compiles new rules, so a policy
// change never serves a token minted under the old one.
type mintCache struct {
	lru *lru.Cache[mintKey, *txtoken.Minted]
}

type mintKey struct {
	sum  [sha256.Size]byte
	rule *policy.Rule
}

// newMintCache returns nil (no reuse) for size ≤ 0.
func newMintCache(size int) *mintCache {
	if size <= 0 {
		return nil
	}
	c, err := lru.New[mintKey, *txtoken.Minted](size)
	if err != nil {
		return nil
	}
	return &mintCache{lru: c}
}

// reusable is the share of a token's lifetime during which it is handed
// out again; the last quarter is left so that no upstream receives a token
// about to expire in flight.
const reusable = 3.0 / 4

// get returns the cached token of k if it is in its reuse window and its
// key still signs (a rotation or withdrawal ends reuse at once).
func (c *mintCache) get(k mintKey, now time.Time, ring *txtoken.Keyring, lifetime time.Duration) *txtoken.Minted {
	if c == nil {
		return nil
	}
	m, ok := c.lru.Get(k)
	if !ok {
		return nil
	}
	issued := m.Expiry.Add(-lifetime)
	if now.Before(issued) || now.Sub(issued) >= time.Duration(float64(lifetime)*reusable) {
		c.lru.Remove(k)
		return nil
	}
	if s, err := ring.Signer(now); err != nil || s.KID != m.KID {
		c.lru.Remove(k)
		return nil
	}
	return m
}

func (c *mintCache) add(k mintKey, m *txtoken.Minted) {
	if c != nil {
		c.lru.Add(k, m)
	}
}

// internalToken mints (or reuses) the rule's internal token for an allowed
// request and adds its header to d. A token that cannot be minted (no key
// may sign yet, a claim fails) denies with 503: the upstream expects the
// token, and an allow without it would hand it a request it cannot
// authenticate.
func (s *Server) internalToken(ctx context.Context, rule *policy.Rule, d *decision, tr *trace) {
	it := rule.InternalToken
	vars := d.vars
	if vars == nil {
		vars = &policy.Vars{}
	}
	now := s.cfg.Now()
	m := s.cfg.Tokens
	cacheable := m != nil && m.Keys != nil && !it.PerRequest && vars.Credential != "client_assertion"
	var key mintKey
	if cacheable {
		key = mintKey{rule: rule}
		switch {
		case d.tokenSummed:
			key.sum = d.tokenSum
		case d.token != "":
			key.sum = token.DigestOf(d.token).Sum
		}
		if got := s.minted.get(key, now, m.Keys, it.Lifetime); got != nil {
			if tr != nil {
				tr.add("internal token", true, "reused the token minted at %d for this credential (kid %s); claims %s", got.Expiry.Add(-it.Lifetime).Unix(), got.KID, claimsJSON(got.Claims))
			}
			d.headers = append(d.headers, header{name: it.Header, value: got.Token})
			return
		}
	}
	extra, err := it.Eval(ctx, vars)
	if err != nil {
		if tr != nil {
			tr.add("internal token", false, "%v", err)
		}
		s.cfg.Logger.Debug("check: internal token claim failed", "rule", rule.Name, "error", err)
		s.mintDeny(d, ReasonTokenClaims)
		return
	}
	if m == nil {
		// A server built without a minter; serve refuses such a policy at
		// load, so only a test gets here.
		s.mintDeny(d, ReasonTokenUnavailable)
		return
	}
	minted, err := m.Mint(s.facts(rule, d, vars, extra), now)
	switch {
	case errors.Is(err, txtoken.ErrUnsigned):
		// An offline preview: show what would be signed.
		if tr != nil {
			tr.add("internal token", true, "not signed (no --token-keys); header %s; claims %s", it.Header, claimsJSON(minted.Claims))
		}
		d.headers = append(d.headers, header{name: it.Header, value: unsignedToken})
		return
	case err != nil:
		if tr != nil {
			tr.add("internal token", false, "%v", err)
		}
		s.cfg.Logger.Debug("check: internal token not minted", "rule", rule.Name, "error", err)
		s.mintDeny(d, ReasonTokenUnavailable)
		return
	}
	if tr != nil {
		tr.add("internal token", true, "minted, kid %s, header %s; claims %s", minted.KID, it.Header, claimsJSON(minted.Claims))
	}
	if cacheable {
		s.minted.add(key, minted)
	}
	d.headers = append(d.headers, header{name: it.Header, value: minted.Token})
}

func (s *Server) mintDeny(d *decision, reason string) {
	d.allow, d.kind, d.reason, d.headers = false, denyUnavailable, reason, nil
}

// facts are what the minter needs from a decision.
func (s *Server) facts(rule *policy.Rule, d *decision, vars *policy.Vars, extra map[string]any) txtoken.Facts {
	it := rule.InternalToken
	f := txtoken.Facts{
		Audience: it.Audience, Lifetime: it.Lifetime, Purpose: it.Purpose,
		ClientID: d.clientID, SpiffeID: d.spiffeID, Scopes: vars.Scopes,
		Authn: vars.Credential, Rule: rule.Name, IssuerVars: vars.IssuerVars, Extra: extra,
	}
	if vars.DPoPJKT != "" {
		f.Authn = "dpop"
	}
	if iss, ok := vars.ClaimString("iss"); ok {
		f.TokenIssuer = iss
	}
	if jti, ok := vars.ClaimString("jti"); ok {
		f.TokenID = jti
	}
	return f
}

func claimsJSON(c map[string]any) string {
	b, err := json.Marshal(c)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
