package token

import "fmt"

const (
	// maxNumericDate is 9999-12-31T23:59:59Z. Later dates are not real
	// expiries, and the bound keeps exp+skew far from int64 overflow.
	maxNumericDate = 253402300799
	// maxAudience caps aud arrays; real ones hold a handful of entries.
	maxAudience = 1000
)

// registered lifts the registered claims out of t.Claims, refusing any of the
// wrong type: a lax reading here (a string exp, an aud object) is how
// validation gets skipped.
func (t *Token) registered() error {
	var err error
	if t.Issuer, t.HasIssuer, err = stringClaim(t.Claims, "iss"); err != nil {
		return err
	}
	if t.Subject, t.HasSubject, err = stringClaim(t.Claims, "sub"); err != nil {
		return err
	}
	if t.ID, t.HasID, err = stringClaim(t.Claims, "jti"); err != nil {
		return err
	}
	if t.Expiry, t.HasExpiry, err = dateClaim(t.Claims, "exp"); err != nil {
		return err
	}
	if t.NotBefore, t.HasNotBefore, err = dateClaim(t.Claims, "nbf"); err != nil {
		return err
	}
	if t.IssuedAt, t.HasIssuedAt, err = dateClaim(t.Claims, "iat"); err != nil {
		return err
	}
	v, ok := t.Claims["aud"]
	if !ok {
		return nil
	}
	t.HasAudience = true
	switch v := v.(type) {
	case string:
		t.Audience = []string{v}
		return nil
	case []any:
		if len(v) == 0 {
			return fmt.Errorf("%w: aud is an empty array", ErrClaimType)
		}
		if len(v) > maxAudience {
			return fmt.Errorf("%w: aud has %d entries, more than %d", ErrClaimType, len(v), maxAudience)
		}
		t.AudienceIsArray = true
		t.Audience = make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("%w: aud entry %d is %s, not a string", ErrClaimType, i, jsonType(e))
			}
			t.Audience[i] = s
		}
		return nil
	}
	return fmt.Errorf("%w: aud is %s, not a string or an array", ErrClaimType, jsonType(v))
}

func stringClaim(c map[string]any, name string) (string, bool, error) {
	v, ok := c[name]
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("%w: %s is %s, not a string", ErrClaimType, name, jsonType(v))
	}
	return s, true, nil
}

// dateClaim reads a NumericDate. RFC 7519 allows fractions, but no issuer we
// serve sends them, and accepting only integer literals keeps 1e9, 1.5 and
// "2030-01-01" from being read three different ways by three components.
func dateClaim(c map[string]any, name string) (int64, bool, error) {
	v, ok := c[name]
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, false, fmt.Errorf("%w: %s is %s, not an integer", ErrClaimType, name, jsonType(v))
	}
	if n < 0 || n > maxNumericDate {
		return 0, false, fmt.Errorf("%w: %s is out of range", ErrClaimType, name)
	}
	return n, true, nil
}

// jsonType names the JSON type of a parsed value for error messages, which
// must not carry the value itself.
func jsonType(v any) string {
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
