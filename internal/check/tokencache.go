package check

import (
	"context"
	"crypto/sha256"
	"hash/maphash"
	"strings"
	"sync/atomic"

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
//
// In front of the LRU, hot keeps the tokens that come back again and
// again verbatim, so their Checks skip SHA-256 and the LRU's lock (see
// hotTokens).
type tokenCache struct {
	lru *tokenLRU
	hot hotTokens
}

// SHA-256 of a token of some hundred bytes and the LRU's lock cost a
// cached Check about 2% of its CPU (extauthz-bench ab). hotTokens is a
// direct-mapped table of LRU entries by a seeded
// maphash of the token's bytes, each slot holding a copy of the token: a
// hit is a 64-bit hash, a comparison of the hash and then of every byte,
// and the same checks an LRU hit runs. A slot is filled on an LRU hit,
// never on a miss, so a stream of new tokens leaves it alone; a token used
// since the slot last resisted a newcomer keeps its slot once more (second
// chance), so two hot tokens sharing a slot do not replace each other on
// every Check.
//
// The hash only picks the slot and keeps the byte comparison for an equal
// hash: a forged token reaches the comparison with probability 2⁻⁶⁴ and
// fails it, so neither the answer nor its timing tells anything about the
// token in the slot. An entry may stay here after the LRU evicted it; it
// still counts only while its issuer and key hold, as in the LRU, which
// bounds the memory by hotSlots tokens of at most maxHotToken bytes.
type hotTokens struct {
	seed  maphash.Seed
	slots [hotSlots]atomic.Pointer[hotToken]
}

const (
	hotSlots    = 512
	maxHotToken = 4 << 10
)

type hotToken struct {
	hash uint64
	raw  string
	e    *cachedToken
	used atomic.Bool
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
	return &tokenCache{lru: newTokenLRU(size), hot: hotTokens{seed: maphash.MakeSeed()}}
}

// find returns the cached verification of raw if it still holds for cred,
// and raw's digest: its Sum is the LRU's key, and the internal-token
// cache's; on a miss the whole digest, whose Parse the signature check
// reuses.
func (c *tokenCache) find(ctx context.Context, raw string, cred *policy.Credential) (*cachedToken, token.Digest) {
	h := maphash.String(c.hot.seed, raw)
	slot := &c.hot.slots[h%hotSlots]
	if ht := slot.Load(); ht != nil && ht.hash == h && ht.raw == raw {
		if c.holds(ctx, ht.e, cred) == entryHolds {
			if !ht.used.Load() {
				ht.used.Store(true)
			}
			return ht.e, token.Digest{Sum: ht.e.sum}
		}
		slot.CompareAndSwap(ht, nil)
	}
	d := token.DigestOf(raw)
	e := c.lookup(ctx, d.Sum, cred)
	if e != nil && len(raw) <= maxHotToken {
		old := slot.Load()
		if old == nil || !old.used.Swap(false) {
			slot.CompareAndSwap(old, &hotToken{hash: h, raw: strings.Clone(raw), e: e})
		}
	}
	return e, d
}

// lookup returns the LRU's entry of the token with digest sum if it still
// holds for cred, and drops one whose key left the issuer's set.
func (c *tokenCache) lookup(ctx context.Context, sum [sha256.Size]byte, cred *policy.Credential) *cachedToken {
	e, ok := c.lru.Get(sum)
	if !ok {
		return nil
	}
	switch c.holds(ctx, e, cred) {
	case entryHolds:
		return e
	case entryKeyGone:
		c.lru.Remove(sum)
	}
	return nil
}

// entryState is whether a cache entry counts for a Check.
type entryState int

const (
	entryHolds entryState = iota
	// entryOtherIssuer: not an issuer of the Check's rule, or not the
	// serving policy's.
	entryOtherIssuer
	// entryKeysDown: the issuer's keys cannot be had now; the entry may
	// count again when they can.
	entryKeysDown
	// entryKeyGone: the key that verified it left the issuer's set
	// (rotation, revocation).
	entryKeyGone
)

// holds tells whether the entry still counts for cred: the same issuer
// object of the serving policy (a policy change makes new ones) and a key
// still in that issuer's set.
func (c *tokenCache) holds(ctx context.Context, e *cachedToken, cred *policy.Credential) entryState {
	td := ""
	if e.issuer.IssuesSVIDs() {
		td = e.issuer.TrustDomain
	}
	// Matched again on every hit, templates included: a cached token must
	// not skip a tenant check, and a rule's issuers differ from another's.
	iss, hasIss := e.tok.Issuer()
	if is, _, ok := cred.MatchIssuer(iss, hasIss, td); is != e.issuer || !ok {
		return entryOtherIssuer
	}
	candidates, err := e.issuer.Keys.Keys(ctx, e.tok.Kid())
	if err != nil {
		return entryKeysDown
	}
	for _, k := range candidates {
		if k == e.key {
			return entryHolds
		}
	}
	return entryKeyGone
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
