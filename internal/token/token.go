package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Errors Parse, Verify and ValidateTime return, wrapped with detail. Callers
// map them to stable reason codes with errors.Is, so each stays distinct.
var (
	// ErrMalformed means the token is not a well-formed compact JWS carrying a
	// JSON object: size, segments, base64url, JSON, or a header member of the
	// wrong type.
	ErrMalformed = errors.New("token: malformed")
	// ErrAlgorithm means alg is missing, not a string, "none" in any case, or
	// not on the allow-list.
	ErrAlgorithm = errors.New("token: algorithm not allowed")
	// ErrCritical means the header has crit or b64: we understand no
	// extension, so we may not ignore one.
	ErrCritical = errors.New("token: critical header extension")
	// ErrClaimType means a registered claim has the wrong JSON type or range.
	ErrClaimType = errors.New("token: registered claim of the wrong type")
	// ErrNoKey means no candidate key fits the token's algorithm.
	ErrNoKey = errors.New("token: no key fits the algorithm")
	// ErrSignature means keys fit but none verifies the signature.
	ErrSignature = errors.New("token: signature does not verify")
	// ErrExpired means now is at or past exp plus the skew.
	ErrExpired = errors.New("token: expired")
	// ErrNotYetValid means now is before nbf minus the skew.
	ErrNotYetValid = errors.New("token: not yet valid")
	// ErrIssuedInFuture means iat is after now plus the skew.
	ErrIssuedInFuture = errors.New("token: issued in the future")
	// ErrMissingExpiry means exp is absent where it is required.
	ErrMissingExpiry = errors.New("token: no expiry")
)

// DefaultMaxTokenBytes is the size limit when Limits.MaxTokenBytes is 0. Real
// access tokens and client assertions are well under 4 KiB; 16 KiB leaves
// room for large claim sets while bounding the work an attacker can ask for.
const DefaultMaxTokenBytes = 16 << 10

// Limits bounds the work Parse does on untrusted input.
type Limits struct {
	// MaxTokenBytes is the largest accepted token, in bytes of the compact
	// serialisation. 0 or less means DefaultMaxTokenBytes.
	MaxTokenBytes int
}

// Header is the part of the JOSE header the verifier uses.
type Header struct {
	Alg, Kid, Typ string
	// JWK is the raw JSON of the jwk member when it is an object, else "".
	// Only a DPoP proof may be verified with it; every other token's jwk is
	// ignored.
	JWK string
}

// TypeIs reports whether typ names the media type name (lower case, without
// "application/"): RFC 7515 §4.1.9 compares typ case-insensitively and lets
// the "application/" prefix be left out. TypeIs("") holds for a typ that is
// absent (or only "application/"). It allocates nothing, as it runs on every
// Check.
func (h Header) TypeIs(name string) bool {
	t := h.Typ
	if len(t) >= len("application/") && strings.EqualFold(t[:len("application/")], "application/") {
		t = t[len("application/"):]
	}
	return strings.EqualFold(t, name)
}

// Token is a parsed compact JWS whose signature has not been checked yet.
type Token struct {
	Header Header
	// claims holds every payload member, registered ones included (see
	// Claims); nil while a view of a cached token has not needed them.
	claims map[string]any
	// payload is the decoded payload JSON, from which claims are read when
	// the map was not built.
	payload string
	// audBuf backs an Audience of up to four entries (most have one or
	// two), so that neither Parse nor a cached token's view allocates it.
	audBuf [4]string
	// index is a view's knowledge of the claims a Check probes (known.go).
	index lazyIndex

	// Issuer, Subject and ID are iss, sub and jti; "" when absent.
	Issuer, Subject, ID          string
	HasIssuer, HasSubject, HasID bool
	Audience                     []string // aud as a list
	HasAudience                  bool
	AudienceIsArray              bool // aud was a JSON array; RFC 7523 cares
	// Expiry, NotBefore and IssuedAt are exp, nbf and iat in whole seconds
	// since the epoch, rounded down; 0 when absent. ExpiryTime, NotBeforeTime
	// and IssuedAtTime give the exact instants, fractions included.
	Expiry, NotBefore, IssuedAt          int64
	HasExpiry, HasNotBefore, HasIssuedAt bool
	// expiryNsec, notBeforeNsec and issuedAtNsec are the nanoseconds past
	// those seconds; 0 for an integer date or a Token built by hand.
	expiryNsec, notBeforeNsec, issuedAtNsec int32

	signingInput []byte // header.payload, as signed
	signature    []byte // decoded
	// signingSHA256 is the SHA-256 of signingInput when Digest.Parse knew it.
	signingSHA256    [32]byte
	hasSigningSHA256 bool
}

// b64 is built once: Strict returns a fresh *Encoding per call.
var b64 = base64.RawURLEncoding.Strict()

// b64url marks the bytes of the base64url alphabet. Checking them up front
// matters because the decoder skips CR and LF even in strict mode, and it
// rejects '=', '+', '/' and whitespace with one clear message.
var b64url = func() (t [256]uint8) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = 1
	}
	return t
}()

// Parse parses raw as a compact JWS carrying a JWT claims set, enforcing the
// strictness rules of the package. The signature is decoded but not checked:
// call Verify, then ValidateTime.
func Parse(raw string, lim Limits) (*Token, error) {
	limit := lim.MaxTokenBytes
	if limit <= 0 {
		limit = DefaultMaxTokenBytes
	}
	if len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrMalformed, len(raw), limit)
	}
	// One pass finds the dots and vets the alphabet before anything is
	// decoded, stopping at the third dot so a token of many segments costs
	// little.
	dot1, dot2 := -1, -1
	for i := 0; i < len(raw); i++ {
		// Eight characters a step while all are of the alphabet, as they
		// are but for the two dots: a token is hundreds of them.
		for ; i+8 <= len(raw); i += 8 {
			b := raw[i : i+8]
			if b64url[b[0]]&b64url[b[1]]&b64url[b[2]]&b64url[b[3]]&b64url[b[4]]&b64url[b[5]]&b64url[b[6]]&b64url[b[7]] == 0 {
				break
			}
		}
		if i == len(raw) {
			break
		}
		c := raw[i]
		if b64url[c] == 1 {
			continue
		}
		if c == '{' && i == 0 {
			return nil, fmt.Errorf("%w: JWS JSON serialisation is not accepted", ErrMalformed)
		}
		if c != '.' {
			return nil, fmt.Errorf("%w: byte %d is outside the base64url alphabet", ErrMalformed, i)
		}
		switch {
		case dot1 < 0:
			dot1 = i
		case dot2 < 0:
			dot2 = i
		default:
			return nil, fmt.Errorf("%w: more than 3 segments", ErrMalformed)
		}
	}
	if dot2 < 0 {
		return nil, fmt.Errorf("%w: fewer than 3 segments", ErrMalformed)
	}
	hSeg, pSeg, sSeg := raw[:dot1], raw[dot1+1:dot2], raw[dot2+1:]
	if hSeg == "" || pSeg == "" {
		return nil, fmt.Errorf("%w: empty header or payload", ErrMalformed)
	}

	// One allocation holds the signing input (raw up to the second dot, which
	// the decoder also reads from) and every decoded segment.
	hn := b64.DecodedLen(len(hSeg))
	pn := b64.DecodedLen(len(pSeg))
	sn := b64.DecodedLen(len(sSeg))
	buf := make([]byte, len(raw)+hn+pn+sn)
	copy(buf, raw)
	src, dec := buf[:len(raw)], buf[len(raw):]
	if err := decode(dec[:hn], src[:dot1], "header"); err != nil {
		return nil, err
	}
	if err := decode(dec[hn:hn+pn], src[dot1+1:dot2], "payload"); err != nil {
		return nil, err
	}
	// The decoded header and payload are read as a string without a copy:
	// dec is this Token's alone and nothing writes it after this point.
	js := unsafe.String(unsafe.SliceData(dec), hn+pn)

	t := &Token{signingInput: src[:dot2]}
	var err error
	if t.Header, err = parseHeader(js[:hn]); err != nil {
		return nil, err
	}
	// Checked after the header so that an unsigned "alg":"none" token is
	// reported as the algorithm attack it is.
	if sSeg == "" {
		return nil, fmt.Errorf("%w: empty signature", ErrMalformed)
	}
	if err := decode(dec[hn+pn:], src[dot2+1:], "signature"); err != nil {
		return nil, err
	}
	t.signature = dec[hn+pn:]
	t.payload = js[hn:]
	if err := t.scanPayload(); err != nil {
		return nil, err
	}
	return t, nil
}

func decode(dst, src []byte, what string) error {
	n, err := b64.Decode(dst, src)
	if err != nil || n != len(dst) {
		return fmt.Errorf("%w: %s is not canonical unpadded base64url", ErrMalformed, what)
	}
	return nil
}
