package check

import (
	"context"
	"crypto/sha256"
	"unsafe"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/token"
)

// DefaultTokenCacheSize bounds the verified-token cache: at about 500 bytes
// an entry for an RFC 9068 token (BenchmarkTokenCacheMemory), about 10 MiB
// of heap when full.
const DefaultTokenCacheSize = 20_000

// tokenCache remembers bearer tokens whose signature verified, keyed by the
// SHA-256 of their bytes, so a token presented again costs a hash and a map
// lookup instead of a parse and a signature check. Only what does not depend
// on the rule is cached (parse, issuer, algorithm, JWT-SVID rules,
// signature); time claims, audience, scopes and CEL run on every Check.
// Client assertions are single-use and never cached.
type tokenCache struct {
	lru *tokenLRU
}

// cachedToken keeps what later Checks read, not the parsed token: the
// payload and the lifted registered claims (token.Compact, about 90 bytes
// plus the payload) but no claims map, which a hit's view builds only if CEL
// reads `claims`. The SPIFFE ID is not kept: it is the subject whenever the
// issuer issues SVIDs (verifyIn set it so).
type cachedToken struct {
	tok    token.Compact
	issuer *policy.Issuer
	// key verified the signature; when it leaves the issuer's key set
	// (rotation, revocation) the entry no longer counts.
	key *keys.Key
	// issuerVars are what the issuer's template took from iss when the
	// entry was added; lookup matches again so allow lists apply.
	issuerVars map[string]string
	lruLinks
}

// newTokenCache returns nil (no caching) for size ≤ 0.
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{lru: newTokenLRU(size)}
}

// digest hashes the token in place: copying a 1 KiB string to a []byte
// would cost as much as hashing it.
func digest(raw string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// lookup returns the cached verification of the token with digest sum if it
// still holds for cred: the same issuer object of the serving policy (a
// policy change makes new ones) and a key still in that issuer's set.
func (c *tokenCache) lookup(ctx context.Context, sum [sha256.Size]byte, cred *policy.Credential) *cachedToken {
	if c == nil {
		return nil
	}
	e, ok := c.lru.Get(sum)
	if !ok {
		return nil
	}
	td := ""
	if e.issuer.IssuesSVIDs() {
		td = e.issuer.TrustDomain
	}
	// Matched again on every hit, templates included: a cached token must
	// not skip a tenant check, and a rule's issuers differ from another's.
	iss, hasIss := e.tok.Issuer()
	if is, _, ok := cred.MatchIssuer(iss, hasIss, td); is != e.issuer || !ok {
		return nil
	}
	candidates, err := e.issuer.Keys.Keys(ctx, e.tok.Kid())
	if err != nil {
		return nil
	}
	for _, k := range candidates {
		if k == e.key {
			return e
		}
	}
	c.lru.Remove(sum)
	return nil
}

// add remembers tok, verified by key for is. A token Compact refuses (over
// 64 KiB) is not cached: it is verified again when it comes back.
func (c *tokenCache) add(sum [sha256.Size]byte, tok *token.Token, is *policy.Issuer, key *keys.Key, vars map[string]string) {
	if c == nil {
		return
	}
	ct, ok := tok.Compact()
	if !ok {
		return
	}
	c.lru.Add(sum, &cachedToken{tok: ct, issuer: is, key: key, issuerVars: vars})
}

// Len is the number of cached tokens.
func (c *tokenCache) Len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}
