package token

import (
	"encoding/binary"
	"strings"
	"unsafe"
)

// span is a string of Compact.s by offset and length.
type span struct{ off, n uint16 }

// Compact flags.
const (
	hasIssuer uint16 = 1 << iota
	hasSubject
	hasID
	hasAudience
	audienceIsArray
	hasExpiry
	hasNotBefore
	hasIssuedAt
)

// Compact is a verified token reduced to what later Checks read, for a cache
// that holds many: the decoded payload and the registered claims and header
// members already lifted out of it, as offsets into one string. It keeps no
// claims map; View gives a Token that builds one only if asked (Claims).
// About 90 bytes plus the payload, against the parsed token's 1 KiB.
type Compact struct {
	// s is the payload JSON, then the strings that are not substrings of it
	// (header members, escaped claims), then for an aud array the spans of
	// its entries, four bytes each.
	s                                 string
	pn                                uint16 // len of the payload in s
	flags                             uint16
	present, isString                 uint16 // lazyIndex's, of knownClaims
	alg, kid, typ, jwk, iss, sub, jti span
	// aud is the audience string, or for an array the offset of its spans
	// and their number.
	aud                     span
	clientID, scope         span // when strings
	expNsec, nbfNsec, iatNs int32
	exp, nbf, iat           int64
}

// Compact reduces a parsed token; ok is false for one that cannot be reduced
// (built from a claims set rather than parsed, or over 64 KiB), which a
// cache should then not keep.
func (t *Token) Compact() (c Compact, ok bool) {
	if t.payload == "" {
		return Compact{}, false
	}
	var extra int
	need := func(s string) {
		if _, in := within(s, t.payload); !in {
			extra += len(s)
		}
	}
	for _, s := range [...]string{t.Header.Alg, t.Header.Kid, t.Header.Typ, t.Header.JWK, t.Issuer, t.Subject, t.ID} {
		need(s)
	}
	for _, a := range t.Audience {
		need(a)
	}
	cid, cidOK := t.ClaimString("client_id")
	scope, scopeOK := t.ClaimString("scope")
	need(cid)
	need(scope)
	table := 0
	if t.AudienceIsArray {
		table = 4 * len(t.Audience)
	}
	if len(t.payload)+extra+table > 0xffff {
		return Compact{}, false
	}
	var b strings.Builder
	b.Grow(len(t.payload) + extra + table)
	b.WriteString(t.payload)
	add := func(s string) span {
		if i, in := within(s, t.payload); in {
			return span{uint16(i), uint16(len(s))}
		}
		off := b.Len()
		b.WriteString(s)
		return span{uint16(off), uint16(len(s))}
	}
	c = Compact{
		pn:  uint16(len(t.payload)),
		alg: add(t.Header.Alg), kid: add(t.Header.Kid), typ: add(t.Header.Typ), jwk: add(t.Header.JWK),
		iss: add(t.Issuer), sub: add(t.Subject), jti: add(t.ID),
		exp: t.Expiry, nbf: t.NotBefore, iat: t.IssuedAt,
		expNsec: t.expiryNsec, nbfNsec: t.notBeforeNsec, iatNs: t.issuedAtNsec,
	}
	for i, name := range knownClaims {
		if t.HasClaim(name) {
			c.present |= 1 << i
		}
	}
	if cidOK {
		c.clientID, c.isString = add(cid), c.isString|1<<knownClientID
	}
	if scopeOK {
		c.scope, c.isString = add(scope), c.isString|1<<knownScope
	}
	switch {
	case t.AudienceIsArray:
		spans := make([]span, len(t.Audience))
		for i, a := range t.Audience {
			spans[i] = add(a)
		}
		c.aud = span{uint16(b.Len()), uint16(len(spans))}
		var e [4]byte
		for _, sp := range spans {
			binary.LittleEndian.PutUint16(e[:2], sp.off)
			binary.LittleEndian.PutUint16(e[2:], sp.n)
			b.Write(e[:])
		}
	case len(t.Audience) == 1:
		c.aud = add(t.Audience[0])
	}
	for _, f := range [...]struct {
		on  bool
		bit uint16
	}{
		{t.HasIssuer, hasIssuer}, {t.HasSubject, hasSubject}, {t.HasID, hasID},
		{t.HasAudience, hasAudience}, {t.AudienceIsArray, audienceIsArray},
		{t.HasExpiry, hasExpiry}, {t.HasNotBefore, hasNotBefore}, {t.HasIssuedAt, hasIssuedAt},
	} {
		if f.on {
			c.flags |= f.bit
		}
	}
	c.s = b.String()
	return c, true
}

// within is the offset of s in base when s is a substring of base's own
// bytes, as the claims Parse reads without an escape are of the payload:
// found by address, where searching the payload for each would read it
// once per claim. Any other s (escaped, or of the header) is not within.
func within(s, base string) (int, bool) {
	if s == "" {
		return 0, true
	}
	p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(base)))
	if len(s) > len(base) || p < b || p-b > uintptr(len(base)-len(s)) {
		return 0, false
	}
	return int(p - b), true
}

func (c *Compact) str(sp span) string { return c.s[sp.off : sp.off+sp.n] }

func (c *Compact) has(bit uint16) bool { return c.flags&bit != 0 }

// Issuer is iss and whether the token has one.
func (c *Compact) Issuer() (string, bool) { return c.str(c.iss), c.has(hasIssuer) }

// Kid is the header's kid.
func (c *Compact) Kid() string { return c.str(c.kid) }

// View fills dst with the token c was made from, less its signature: every
// field as Parse set it, and Claims built from the payload on first use.
// It allocates only for an aud array of more than four entries.
func (c *Compact) View(dst *Token) {
	*dst = Token{
		Header:  Header{Alg: c.str(c.alg), Kid: c.str(c.kid), Typ: c.str(c.typ), JWK: c.str(c.jwk)},
		payload: c.s[:c.pn],
		Issuer:  c.str(c.iss), Subject: c.str(c.sub), ID: c.str(c.jti),
		HasIssuer: c.has(hasIssuer), HasSubject: c.has(hasSubject), HasID: c.has(hasID),
		HasAudience: c.has(hasAudience), AudienceIsArray: c.has(audienceIsArray),
		Expiry: c.exp, NotBefore: c.nbf, IssuedAt: c.iat,
		HasExpiry: c.has(hasExpiry), HasNotBefore: c.has(hasNotBefore), HasIssuedAt: c.has(hasIssuedAt),
		expiryNsec: c.expNsec, notBeforeNsec: c.nbfNsec, issuedAtNsec: c.iatNs,
		index: lazyIndex{present: c.present, isString: c.isString, clientID: c.str(c.clientID), scope: c.str(c.scope)},
	}
	switch {
	case dst.AudienceIsArray:
		if int(c.aud.n) <= len(dst.audBuf) {
			dst.Audience = dst.audBuf[:c.aud.n:c.aud.n]
		} else {
			dst.Audience = make([]string, c.aud.n)
		}
		for i := range dst.Audience {
			e := c.s[int(c.aud.off)+4*i:]
			dst.Audience[i] = c.str(span{uint16(e[0]) | uint16(e[1])<<8, uint16(e[2]) | uint16(e[3])<<8})
		}
	case dst.HasAudience:
		dst.audBuf[0] = c.str(c.aud)
		dst.Audience = dst.audBuf[:1:1]
	}
}
