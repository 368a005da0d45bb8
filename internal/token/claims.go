package token

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

const (
	// maxNumericDate is 9999-12-31T23:59:59Z. Later dates are not real
	// expiries, and the bound keeps exp+skew far from int64 overflow.
	maxNumericDate = 253402300799
	// maxAudience caps aud arrays; real ones hold a handful of entries.
	maxAudience = 1000
)

// registered lifts the registered claims, as claim gives them, refusing any
// of the wrong type: a lax reading here (a string exp, an aud object) is how
// validation gets skipped.
func (t *Token) registered(claim func(name string) (any, bool)) error {
	var err error
	if t.Issuer, t.HasIssuer, err = stringClaim(claim, "iss"); err != nil {
		return err
	}
	if t.Subject, t.HasSubject, err = stringClaim(claim, "sub"); err != nil {
		return err
	}
	if t.ID, t.HasID, err = stringClaim(claim, "jti"); err != nil {
		return err
	}
	if t.Expiry, t.expiryNsec, t.HasExpiry, err = dateClaim(claim, "exp"); err != nil {
		return err
	}
	if t.NotBefore, t.notBeforeNsec, t.HasNotBefore, err = dateClaim(claim, "nbf"); err != nil {
		return err
	}
	if t.IssuedAt, t.issuedAtNsec, t.HasIssuedAt, err = dateClaim(claim, "iat"); err != nil {
		return err
	}
	v, ok := claim("aud")
	if !ok {
		return nil
	}
	t.HasAudience = true
	switch v := v.(type) {
	case string:
		t.audBuf[0] = v
		t.Audience = t.audBuf[:1:1]
		return nil
	case []any:
		if len(v) == 0 {
			return fmt.Errorf("%w: aud is an empty array", ErrClaimType)
		}
		if len(v) > maxAudience {
			return fmt.Errorf("%w: aud has %d entries, more than %d", ErrClaimType, len(v), maxAudience)
		}
		t.AudienceIsArray = true
		if len(v) <= len(t.audBuf) {
			t.Audience = t.audBuf[:len(v):len(v)]
		} else {
			t.Audience = make([]string, len(v))
		}
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("%w: aud entry %d is %s, not a string", ErrClaimType, i, JSONType(e))
			}
			t.Audience[i] = s
		}
		return nil
	}
	return fmt.Errorf("%w: aud is %s, not a string or an array", ErrClaimType, JSONType(v))
}

// registeredClaims are the claims registered lifts, in its order.
var registeredClaims = [...]string{"iss", "sub", "jti", "exp", "nbf", "iat", "aud"}

// registeredIndex is name's place in registeredClaims, or -1.
func registeredIndex(name string) int {
	switch name {
	case "iss":
		return 0
	case "sub":
		return 1
	case "jti":
		return 2
	case "exp":
		return 3
	case "nbf":
		return 4
	case "iat":
		return 5
	case "aud":
		return 6
	}
	return -1
}

// lift is registered for registeredClaims[r] read straight from the payload
// at p, consuming its value: the same types, ranges and messages, without
// boxing the value. err is a syntax error, which ends the parse; claimErr a
// value of the wrong type, which the caller reports once the payload is
// known to be valid.
func (t *Token) lift(p *parser, r int) (claimErr, err error) {
	name := registeredClaims[r]
	switch c := p.peek(); {
	case r == 6:
		return t.liftAudience(p)
	case r >= 3:
		if c != '-' && (c < '0' || c > '9') {
			return p.wrongType(name, "not a number")
		}
		n, f, integer, err := p.numberParts()
		if err != nil {
			return nil, err
		}
		sec, nsec, cerr := numericDate(name, n, f, integer)
		if cerr != nil {
			return cerr, nil
		}
		switch r {
		case 3:
			t.Expiry, t.expiryNsec, t.HasExpiry = sec, nsec, true
		case 4:
			t.NotBefore, t.notBeforeNsec, t.HasNotBefore = sec, nsec, true
		default:
			t.IssuedAt, t.issuedAtNsec, t.HasIssuedAt = sec, nsec, true
		}
		return nil, nil
	case c != '"':
		return p.wrongType(name, "not a string")
	}
	s, err := p.str()
	switch r {
	case 0:
		t.Issuer, t.HasIssuer = s, true
	case 1:
		t.Subject, t.HasSubject = s, true
	default:
		t.ID, t.HasID = s, true
	}
	return nil, err
}

// liftAudience is lift for aud: a string, or a non-empty array of at most
// maxAudience strings.
func (t *Token) liftAudience(p *parser) (claimErr, err error) {
	t.HasAudience = true
	switch p.peek() {
	case '"':
		s, err := p.str()
		t.audBuf[0] = s
		t.Audience = t.audBuf[:1:1]
		return nil, err
	case '[':
	default:
		return p.wrongType("aud", "not a string or an array")
	}
	var small [8]string
	auds := small[:0]
	n, bad := 0, -1
	var badType string
	err = p.elements(func() error {
		n++
		if p.peek() == '"' {
			s, err := p.str()
			auds = append(auds, s)
			return err
		}
		if bad >= 0 {
			return p.vet(2)
		}
		bad = n - 1
		v, err := p.value(2)
		badType = JSONType(v)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return fmt.Errorf("%w: aud is an empty array", ErrClaimType), nil
	case n > maxAudience:
		return fmt.Errorf("%w: aud has %d entries, more than %d", ErrClaimType, n, maxAudience), nil
	case bad >= 0:
		return fmt.Errorf("%w: aud entry %d is %s, not a string", ErrClaimType, bad, badType), nil
	}
	t.AudienceIsArray = true
	if n <= len(t.audBuf) {
		t.Audience = t.audBuf[:copy(t.audBuf[:], auds):n]
	} else {
		t.Audience = append([]string(nil), auds...)
	}
	return nil, nil
}

// wrongType consumes the value at p (a top-level member's) and names its
// type in the error registered gives for claim name.
func (p *parser) wrongType(name, want string) (claimErr, err error) {
	v, err := p.value(1)
	if err != nil {
		return nil, err
	}
	return fmt.Errorf("%w: %s is %s, %s", ErrClaimType, name, JSONType(v), want), nil
}

func stringClaim(claim func(string) (any, bool), name string) (string, bool, error) {
	v, ok := claim(name)
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("%w: %s is %s, not a string", ErrClaimType, name, JSONType(v))
	}
	return s, true, nil
}

// dateClaim reads a NumericDate as whole seconds (rounded down) and the
// nanoseconds past them. RFC 7519 §2 makes it any JSON number, fractions
// included, and issuers that compute exp in floating point (time.time() + 3600)
// send them; refusing those would turn valid tokens away. What stays refused is
// what cannot be a date: a string, a bool, null, a container, a negative value
// or one past 9999-12-31. 1e400 never gets here: the parser refuses it.
func dateClaim(claim func(string) (any, bool), name string) (sec int64, nsec int32, ok bool, err error) {
	v, ok := claim(name)
	if !ok {
		return 0, 0, false, nil
	}
	switch n := v.(type) {
	case int64:
		sec, nsec, err = numericDate(name, n, 0, true)
	case float64:
		sec, nsec, err = numericDate(name, 0, n, false)
	default:
		return 0, 0, false, fmt.Errorf("%w: %s is %s, not a number", ErrClaimType, name, JSONType(v))
	}
	return sec, nsec, err == nil, err
}

// numericDate is the NumericDate n (integer) or f, refused out of range.
func numericDate(name string, n int64, f float64, integer bool) (sec int64, nsec int32, err error) {
	if integer {
		if n < 0 || n > maxNumericDate {
			return 0, 0, fmt.Errorf("%w: %s is out of range", ErrClaimType, name)
		}
		return n, 0, nil
	}
	// Written so that NaN, which no comparison holds for, is refused too.
	if !(f >= 0 && f <= maxNumericDate) {
		return 0, 0, fmt.Errorf("%w: %s is out of range", ErrClaimType, name)
	}
	sec, nsec = splitSeconds(f)
	return sec, nsec, nil
}

// splitSeconds splits f, in [0, maxNumericDate], into whole seconds and
// nanoseconds. The nanoseconds come from the shortest decimal that parses back
// to f, not from f's binary value, so 1767225600.1 gives 100000000 ns, not the
// 99999904.6 of 1767225600.0999999046: that decimal is what encoders (Go,
// Python, JavaScript) write, so it is the literal the issuer sent. It has at most 17 significant digits,
// so from 1973-03-03 (1e8 s) on it has at most 8 decimals and is kept exactly;
// earlier dates lose what lies below a nanosecond, which time.Time cannot hold.
// Its integer part is f rounded down, because a decimal at or above the next
// integer would parse to that integer, which float64 holds exactly here.
func splitSeconds(f float64) (int64, int32) {
	var buf [32]byte
	d := strconv.AppendFloat(buf[:0], f, 'f', -1, 64)
	var nsec int32
	if i := bytes.IndexByte(d, '.'); i >= 0 {
		frac := d[i+1:]
		for k := range 9 {
			nsec *= 10
			if k < len(frac) {
				nsec += int32(frac[k] - '0')
			}
		}
	}
	return int64(f), nsec
}

// ExpiryTime is exp to the nanosecond, fraction included, or the zero Time
// when exp is absent. Expiry is the same instant rounded down to the second;
// compare with this one so that a fraction is not rounded either way.
func (t *Token) ExpiryTime() time.Time { return instant(t.HasExpiry, t.Expiry, t.expiryNsec) }

// NotBeforeTime is nbf to the nanosecond, or the zero Time when nbf is absent.
func (t *Token) NotBeforeTime() time.Time {
	return instant(t.HasNotBefore, t.NotBefore, t.notBeforeNsec)
}

// IssuedAtTime is iat to the nanosecond, or the zero Time when iat is absent.
func (t *Token) IssuedAtTime() time.Time { return instant(t.HasIssuedAt, t.IssuedAt, t.issuedAtNsec) }

// instant is in UTC so that printing it does not depend on the host's zone.
func instant(has bool, sec int64, nsec int32) time.Time {
	if !has {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// JSONType names the JSON type of a parsed value for error messages, which
// must not carry the value itself.
func JSONType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a number with a fraction, an exponent or beyond int64"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "unknown"
}
