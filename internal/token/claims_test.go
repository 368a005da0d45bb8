package token

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
)

// dateOf returns, for a parsed token, the whole-second field, the Has flag
// and the exact accessor of claim.
func dateOf(tok *Token, claim string) (int64, bool, time.Time) {
	switch claim {
	case "exp":
		return tok.Expiry, tok.HasExpiry, tok.ExpiryTime()
	case "nbf":
		return tok.NotBefore, tok.HasNotBefore, tok.NotBeforeTime()
	}
	return tok.IssuedAt, tok.HasIssuedAt, tok.IssuedAtTime()
}

var dateClaims = []string{"exp", "nbf", "iat"}

// TestNumericDateAccepts signs real tokens whose exp, nbf or iat is a JSON
// number of every shape RFC 7519 §2 allows, and checks both the whole seconds
// (rounded down) and the exact instant.
func TestNumericDateAccepts(t *testing.T) {
	cases := []struct {
		json string
		sec  int64
		nsec int
	}{
		{`1767225600.5`, 1767225600, 500_000_000},
		{`1.7672256005e9`, 1767225600, 500_000_000},
		{`17672256005E-1`, 1767225600, 500_000_000},
		{`1767225600.0`, 1767225600, 0},
		{`1767225600`, 1767225600, 0},
		{`1.7672256e+9`, 1767225600, 0},
		// The decimal the issuer wrote, not float64's nearest binary value
		// (which is .0999999046...).
		{`1767225600.1`, 1767225600, 100_000_000},
		// Rounded down to the second, never up to the next one.
		{`1767225600.9999998`, 1767225600, 999_999_800},
		// Closer to the next second than float64 resolves at this size
		// (2^-22 s): the parser reads the literal as that second.
		{`1767225600.9999999`, 1767225601, 0},
		{`1767225600.000001`, 1767225600, 1_000},
		{`0.5`, 0, 500_000_000},
		{`0.000000001`, 0, 1},
		// Below a nanosecond is dropped, not rounded up.
		{`0.0000000019`, 0, 1},
		{`-0.0`, 0, 0},
		{`0e5`, 0, 0},
		{`1e2`, 100, 0},
		{`253402300799.0`, maxNumericDate, 0},
		{`253402300798.5`, maxNumericDate - 1, 500_000_000},
	}
	i := 0
	for _, claim := range dateClaims {
		for _, tc := range cases {
			// Each case under a different algorithm, so that dates are
			// checked on tokens of every kind without signing each 14 times.
			alg := allAlgs[i%len(allAlgs)]
			i++
			t.Run(claim+" "+tc.json+" "+alg, func(t *testing.T) {
				raw := signed(alg, `{"iss":"https://idp.example","`+claim+`":`+tc.json+`}`)
				tok := mustParse(t, raw)
				if err := tok.Verify([]*keys.Key{pubFor(alg)}); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				sec, has, at := dateOf(tok, claim)
				want := time.Unix(tc.sec, int64(tc.nsec))
				if !has || sec != tc.sec || !at.Equal(want) {
					t.Errorf("%s = %d (has %v), exact %s; want %d, exact %s", claim, sec, has, at, tc.sec, want)
				}
				if at.Location() != time.UTC {
					t.Errorf("%s is in %s, want UTC", claim, at.Location())
				}
				for _, other := range dateClaims {
					if other == claim {
						continue
					}
					if sec, has, at := dateOf(tok, other); has || sec != 0 || !at.IsZero() {
						t.Errorf("absent %s = %d (has %v), exact %s; want the zero values", other, sec, has, at)
					}
				}
			})
		}
	}
}

// TestNumericDateRejects signs real tokens whose date claims cannot be a
// date, so only the claim rules can refuse them.
func TestNumericDateRejects(t *testing.T) {
	cases := []struct {
		json string
		want error
	}{
		{`-1`, ErrClaimType},
		{`-0.5`, ErrClaimType},
		{`-1e-9`, ErrClaimType},
		{`1e20`, ErrClaimType},
		{`253402300799.5`, ErrClaimType},
		{`253402300800`, ErrClaimType},
		{`99999999999999999999`, ErrClaimType},
		{`"1767225600"`, ErrClaimType},
		{`"1767225600.5"`, ErrClaimType},
		{`true`, ErrClaimType},
		{`null`, ErrClaimType},
		{`[1767225600.5]`, ErrClaimType},
		{`{"sec":1767225600}`, ErrClaimType},
		// No float64 holds these: the parser refuses them as malformed.
		{`1e400`, ErrMalformed},
		{`-1e400`, ErrMalformed},
	}
	for _, claim := range dateClaims {
		for _, tc := range cases {
			t.Run(claim+" "+tc.json, func(t *testing.T) {
				tok, err := Parse(signed("ES256", `{"iss":"https://idp.example","`+claim+`":`+tc.json+`}`), Limits{})
				if !errors.Is(err, tc.want) || tok != nil {
					t.Fatalf("Parse = %v, %v; want %v", tok, err, tc.want)
				}
			})
		}
	}
}

// TestTimeAccessorsByHand covers a Token that other packages' tests build
// without Parse: the exact instant is then the whole second.
func TestTimeAccessorsByHand(t *testing.T) {
	tok := &Token{Expiry: 1767225600, HasExpiry: true, NotBefore: 7}
	if got := tok.ExpiryTime(); !got.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("ExpiryTime = %s", got)
	}
	// NotBefore is set but HasNotBefore is not: the claim is absent.
	if got := tok.NotBeforeTime(); !got.IsZero() {
		t.Errorf("NotBeforeTime = %s, want the zero Time", got)
	}
	if got := tok.IssuedAtTime(); !got.IsZero() {
		t.Errorf("IssuedAtTime = %s, want the zero Time", got)
	}
}

// TestValidateTimeFractions checks that ValidateTime compares exact instants:
// rounding a fractional exp up, or nbf or iat down, would favour the token.
func TestValidateTimeFractions(t *testing.T) {
	at := time.UnixMilli
	parse := func(payload string) *Token {
		tok := mustParse(t, signed("EdDSA", payload))
		if err := tok.Verify([]*keys.Key{pubFor("EdDSA")}); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return tok
	}
	const far = `,"exp":1767225600.5}`
	cases := []struct {
		payload string
		now     time.Time
		skew    time.Duration
		want    error
	}{
		{`{"exp":100.5}`, at(100_400), 0, nil},
		{`{"exp":100.5}`, at(100_500), 0, ErrExpired},
		{`{"exp":100.5}`, at(100_600), 0, ErrExpired},
		{`{"exp":100.5}`, at(100_200), 0, nil}, // the whole second, 100, is past
		{`{"exp":100.5}`, at(101_400), time.Second, nil},
		{`{"exp":100.5}`, at(101_500), time.Second, ErrExpired},
		{`{"exp":100.000000001}`, time.Unix(100, 0), 0, nil},
		{`{"exp":100.000000001}`, time.Unix(100, 1), 0, ErrExpired},
		{`{"nbf":100.5` + far, at(100_400), 0, ErrNotYetValid},
		{`{"nbf":100.5` + far, at(100_500), 0, nil},
		{`{"nbf":100.5` + far, at(100_600), 0, nil},
		{`{"nbf":100.5` + far, at(99_500), time.Second, nil},
		{`{"nbf":100.5` + far, at(99_400), time.Second, ErrNotYetValid},
		{`{"nbf":100.000000001` + far, time.Unix(100, 0), 0, ErrNotYetValid},
		{`{"iat":100.5` + far, at(100_400), 0, ErrIssuedInFuture},
		{`{"iat":100.5` + far, at(100_500), 0, nil},
		{`{"iat":100.5` + far, at(100_600), 0, nil},
		{`{"iat":100.5` + far, at(99_500), time.Second, nil},
		{`{"iat":100.5` + far, at(99_400), time.Second, ErrIssuedInFuture},
		{`{"iat":100.000000001` + far, time.Unix(100, 0), 0, ErrIssuedInFuture},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s now %s skew %s", tc.payload, tc.now.UTC().Format("05.000000000"), tc.skew)
		t.Run(name, func(t *testing.T) {
			err := parse(tc.payload).ValidateTime(tc.now, tc.skew, true)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("ValidateTime = %v, want %v", err, tc.want)
			}
		})
	}
}

// checkDate asserts what must hold of any accepted date claim v: sec is v
// rounded down, at is within the same second, and at is the decimal v was
// written as, cut to the nanosecond.
func checkDate(t *testing.T, name string, v any, sec int64, at time.Time) {
	t.Helper()
	if at.Unix() != sec {
		t.Fatalf("%s: field %d, exact %s in another second", name, sec, at)
	}
	switch v := v.(type) {
	case int64:
		if sec != v || at.Nanosecond() != 0 {
			t.Fatalf("%s: claim %d, field %d, exact %s", name, v, sec, at)
		}
	case float64:
		if !(v >= 0 && v <= maxNumericDate) {
			t.Fatalf("%s: %v accepted", name, v)
		}
		// Reading at, and at plus a nanosecond, back as decimals must
		// bracket v: at is never later than v, nor a nanosecond earlier.
		low, high := decimal(at), decimal(at.Add(time.Nanosecond))
		if low > v || high < v {
			t.Fatalf("%s: claim %v outside [%v, %v] of exact %s", name, v, low, high, at)
		}
		// From 1e8 on the decimal fits in nanoseconds, so nothing is cut.
		if v >= 1e8 && low != v {
			t.Fatalf("%s: claim %v, exact %s reads back as %v", name, v, at, low)
		}
	default:
		t.Fatalf("%s: %s accepted as a date", name, JSONType(v))
	}
}

func decimal(at time.Time) float64 {
	return must(strconv.ParseFloat(fmt.Sprintf("%d.%09d", at.Unix(), at.Nanosecond()), 64))
}
